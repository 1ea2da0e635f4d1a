"""`check` on the personal fields of an issue (`{{ name | default("…") }}`): each line that holds
one, as a reader without a value reads it (the fallback) and as one with a long real name reads
it, so that the editor sees both before sending; a field without a fallback is a warning.
`newsletter build` writes the whole letter both ways (`<variant>.long-name.html` beside the rest)."""

from __future__ import annotations

from newsletter.editor.results import OK, WARNING, CheckResult
from newsletter.errors import Problems
from newsletter.letter.build import Build
from newsletter.letter.personal import CLOSE, OPEN, person_values
from newsletter.placeholders import Slots

# What a long real name looks like in each language (the longest lines are the ones that break).
LONG_NAMES = {
    "ar": "عبد الرحمن بن عبد الله بن محمد آل عبد اللطيف الحسيني",
    "en": "Maria-Fernanda Alexandrovna Castellanos de la Cruz-Montgomery",
}


UNISOLATED = str.maketrans("", "", "\u2068\u2069")  # shown without the isolates around the value


def check_personal(build: Build) -> list[CheckResult]:
    out: list[CheckResult] = []
    fields = next(iter(build.variants.values())).fields if build.variants else ()
    for number, field in enumerate(fields):
        code = field.path.rsplit(".", 2)[-2] if field.path.count(".") >= 2 else build.config.primary.code
        variant = build.variants.get(code) or next(iter(build.variants.values()))
        where = f"{Problems.where(field.path)}:{field.line}"
        line = next((line for line in variant.text.split("\n") if f"{OPEN}{number}{CLOSE}" in line), "")
        fallbacks = tuple(f.fallback for f in fields)
        plain_slots = Slots(line, html=False, fallbacks=fallbacks)
        without = plain_slots.fill({}).strip()
        person = {f.name: LONG_NAMES.get(code, LONG_NAMES["en"]) for f in fields}
        long = plain_slots.fill(person_values(fields, person)).strip().translate(UNISOLATED)
        shown = f"{{{{ {field.name} }}}} reads {without!r} without a value, {long!r} with a long one"
        if not field.fallback:
            out.append(CheckResult("personal", WARNING, f'{shown}; give it a fallback: default("…")', code, where))
        else:
            out.append(CheckResult("personal", OK, shown, code, where))
    return out
