"""The example letter `newsletter init` writes: a short letter of a network's news written out
in Arabic and English (an opening with a personal greeting, two sections, a closing with a
two-line signature, the bilingual subject written), so that a new user can build it, check it
and read it at once, and see how an issue is written. issue.toml says it is an example to
replace; its words are the only ones here."""

from __future__ import annotations

import datetime as dt

EXAMPLE_SLUG = "example"

ISSUE_TOML = """\
# An example letter, written by `newsletter init` to be built and read at once:
#   newsletter build issues/example      then open dist/example/bilingual.html
#   newsletter check issues/example
#   newsletter preview issues/example    a live preview, rebuilt on every save
# Replace its words with yours, or start a letter of your own: newsletter new {today:%Y-%m}-news
date = {today:%Y-%m-%d}

[subject]
{subjects}
[preheader]
{preheaders}"""

TEXTS = {
    "ar": {
        "subject": "أخبار الشبكة: ورشة التوثيق ولقاؤنا القادم",
        "short": "أخبار الشبكة: ورشة التوثيق",  # its half of the bilingual subject
        "short_preheader": "ما تعلّمناه في ورشة التوثيق، وموعد لقائنا القادم",
        "preheader": "ما تعلّمناه في ورشة توثيق الانتهاكات، وموعد لقائنا القادم وكيف تشاركون فيه.",
        "opening.md": """\
{{ name | default("الأصدقاء والصديقات الأعزاء") }}،

تحية طيبة، وبعد،

نشارككم في هذه الرسالة أخبار الشبكة لهذا الشهر: ما تعلّمناه في ورشة توثيق الانتهاكات، وموعد لقائنا القادم.
""",
        "01-workshop.md": """\
# ورشة توثيق الانتهاكات

شارك أربعة وعشرون عضوًا من سبع منظمات في ورشة استمرت يومين حول توثيق الانتهاكات وحفظ الأدلة بأمان. تدرّب المشاركون والمشاركات على تدوين الشهادات، وحماية هوية الشهود، وتخزين الملفات ونسخها احتياطيًا.

سنرسل مواد الورشة إلى المنظمات الأعضاء خلال الأسبوع القادم، ويمكن لمن فاتته الورشة أن يطلبها بالرد على هذه الرسالة.
""",
        "02-next-meeting.md": """\
# لقاؤنا القادم

نلتقي الشهر القادم في اجتماع الشبكة الفصلي، حضوريًا، وعبر الإنترنت لمن لا يستطيع السفر. على جدول الأعمال:

- ما تعلّمناه من الورشة وكيف نطبّقه
- خطة عمل الأشهر الستة القادمة
- انضمام أعضاء جدد إلى الشبكة

لتأكيد مشاركتكم، ردّوا على هذه الرسالة قبل نهاية الشهر.
""",
        "closing.md": """\
شكرًا لكم على عملكم ودعمكم، ونتطلّع إلى لقائكم قريبًا.

مع أطيب التحيات،
فريق التنسيق في الشبكة
منظمة المثال
""",
    },
    "en": {
        "subject": "Network news: the documentation workshop and our next meeting",
        "short": "Network news: the documentation workshop",
        "short_preheader": "What we learnt at the workshop, and when we meet next",
        "preheader": "What we learnt at the documentation workshop, when we meet next and how to take part.",
        "opening.md": """\
{{ name | default("Dear friends") }},

Warm greetings.

In this letter we share the network's news of the month: what we learnt at the workshop on documenting violations, and when we meet next.
""",
        "01-workshop.md": """\
# The documentation workshop

Twenty-four members from seven organisations took part in a two-day workshop on documenting violations and keeping evidence safe. They practised recording testimonies, protecting the identity of witnesses, and storing and backing up files.

We will send the workshop's materials to the member organisations next week; if you missed the workshop, reply to this letter to receive them.
""",
        "02-next-meeting.md": """\
# Our next meeting

We meet next month for the network's quarterly meeting, in person, and online for those who cannot travel. On the agenda:

- what we learnt at the workshop, and how to use it
- the plan for the next six months
- new members joining the network

To confirm that you will take part, reply to this letter before the end of the month.
""",
        "closing.md": """\
Thank you for your work and your support; we look forward to seeing you soon.

With best wishes,
The network's coordination team
Example Organisation
""",
    },
}


def example_files(codes: tuple[str, ...], today: dt.date) -> dict[str, str]:
    """File name → text of the example issue in each of `codes` (English words for a language
    without its own)."""
    texts = {code: TEXTS.get(code, TEXTS["en"]) for code in codes}
    subjects = [f'{code} = "{text["subject"]}"' for code, text in texts.items()]
    # the bilingual letter's inbox lines, written: cut from the two whole ones, each half would lose its end
    subjects += [f'bilingual = "{" | ".join(text["short"] for text in texts.values())}"'] if len(codes) > 1 else []
    preheaders = [f'{code} = "{text["preheader"]}"' for code, text in texts.items()]
    preheaders += (
        [f'bilingual = "{" | ".join(t["short_preheader"] for t in texts.values())}"'] if len(codes) > 1 else []
    )
    files = {
        "issue.toml": ISSUE_TOML.format(
            today=today, subjects="\n".join(subjects) + "\n", preheaders="\n".join(preheaders) + "\n"
        )
    }
    for code, text in texts.items():
        for name, body in text.items():
            if name.endswith(".md"):
                files[name.replace(".md", f".{code}.md")] = body
    return files
