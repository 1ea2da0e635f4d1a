"""Languages the templates know: direction, alignment, the few words the layout needs, and the one
table of what the public pages and the confirmation message say in each language.

And runs of the other script kept in order inside right-to-left and left-to-right text.
Unwrapped, `+966 11 234 5678` inside Arabic displays as `5678 234 11 966+` and a URL's
trailing slash jumps to its front. `<bdi>` is unsupported in Gmail, Outlook and Yahoo, so
runs are wrapped in `<span dir="…">`; plain text gets Unicode marks instead. Short runs with a
space or hyphen (phone numbers, codes) are kept on one line (`white-space:nowrap`, inline, so
that it holds where a client drops the `<style>` block).

In plain text a mark touching a URL breaks link detectors (they find nothing, or take the mark
into the URL), so URLs and addresses are delimited as RFC 3986 (appendix C) suggests,
`<https://…>`, with the marks outside the delimiters: `‎<https://…>‎`, `‎(https://…)‎`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from html import escape

# The variant with every language of the letter, the primary one first.
BILINGUAL = "bilingual"
# A reader's language when they chose every language: they get the bilingual letter.
BOTH = "both"

ARABIC_INDIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

DIGIT_STYLES = ("western", "arabic-indic")

# Month names: Arabic readers in Egypt and the Gulf write the first set, in the Levant and Iraq
# the second; the letters pair them ("ديسمبر كانون الأول"), which is the default ("both").
MONTHS: dict[str, dict[str, tuple[str, ...]]] = {
    "ar": {
        "egyptian": (
            "يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو",
            "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر",
        ),
        "levantine": (
            "كانون الثاني", "شباط", "آذار", "نيسان", "أيار", "حزيران",
            "تموز", "آب", "أيلول", "تشرين الأول", "تشرين الثاني", "كانون الأول",
        ),
    },
    "en": {
        "english": (
            "January", "February", "March", "April", "May", "June",
            "July", "August", "September", "October", "November", "December",
        ),
    },
}  # fmt: skip
# [dates] in newsletter.toml: the styles each language may choose, the default first.
DATE_STYLES: dict[str, tuple[str, ...]] = {"ar": ("both", "egyptian", "levantine"), "en": ("english",)}


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # in the language itself
    english_name: str
    dir: str
    font_stack: str
    words: dict[str, str] = field(default_factory=dict)

    @property
    def rtl(self) -> bool:
        return self.dir == "rtl"

    @property
    def align(self) -> str:
        # Physical values only: Outlook, Yahoo and the Gmail apps ignore start/end.
        return "right" if self.rtl else "left"

    def word(self, key: str, **values: str) -> str:
        return self.words[key].format(**values)


# Font stacks are unquoted on purpose: mj-font and several clients drop escaped quotes.
LANGUAGES: dict[str, Language] = {
    "ar": Language(
        code="ar",
        name="العربية",
        english_name="Arabic",
        dir="rtl",
        font_stack="Noto Naskh Arabic, Tahoma, Segoe UI, Arial, sans-serif",
        words={
            "read_in": "اقرأ بالعربية",
            "contact": "للتواصل معنا:",
            "unsubscribe": "إلغاء الاشتراك",
            "unsubscribe_text": "لإلغاء الاشتراك في هذه الرسائل:",
            "why": "تصلك هذه الرسالة لاشتراكك في رسائل {organisation}.",
            "view_online": "اعرض هذه الرسالة في المتصفح",
            "read_in_browser": "أو في المتصفح",
            "archive": "أرشيف الرسائل",
            "archive_intro": "الرسائل المنشورة من {organisation}، الأحدث أولاً.",
            "archive_empty": "لم تُنشر أي رسالة بعد.",
            "archive_feed": "تابع الرسائل الجديدة (Atom)",
            "archive_back": "كل الرسائل",
            "edition_bilingual": "العربية والإنجليزية",
            "signup": "للاشتراك في هذه الرسائل:",
            "signup_link": "اشترك",
            "page_title": "إلغاء الاشتراك",
            "page_question": "هل تريد إلغاء اشتراك العنوان {address} في رسائل {organisation}؟",
            "page_button": "إلغاء الاشتراك",
            "page_done": "تم إلغاء اشتراك العنوان {address}. لن تصلك رسائل أخرى من {organisation}.",
            "page_already": "العنوان {address} غير مشترك في رسائل {organisation}.",
            "page_resubscribe_offer": "هل ألغيت الاشتراك عن طريق الخطأ؟",
            "page_resubscribe": "إعادة الاشتراك",
            "page_resubscribed": "تمت إعادة اشتراك العنوان {address} في رسائل {organisation}.",
            "page_test_copy": "هذه نسخة تجريبية من الرسالة: في الرسائل الحقيقية يُلغي هذا الرابط اشتراك القارئ. لم يتغيّر شيء.",
        },
    ),
    "en": Language(
        code="en",
        name="English",
        english_name="English",
        dir="ltr",
        font_stack="Helvetica, Arial, sans-serif",
        words={
            "read_in": "Read in English",
            "contact": "Contact us:",
            "unsubscribe": "Unsubscribe",
            "unsubscribe_text": "To stop receiving these letters:",
            "why": "You receive this letter because you subscribed to updates from {organisation}.",
            "view_online": "View this letter in your browser",
            "read_in_browser": "or in your browser",
            "archive": "Letters archive",
            "archive_intro": "The letters {organisation} has published, newest first.",
            "archive_empty": "No letter has been published yet.",
            "archive_feed": "Follow new letters (Atom)",
            "archive_back": "All letters",
            "edition_bilingual": "Arabic and English",
            "signup": "To receive these letters:",
            "signup_link": "Subscribe",
            "page_title": "Unsubscribe",
            "page_question": "Unsubscribe {address} from the letters of {organisation}?",
            "page_button": "Unsubscribe",
            "page_done": "{address} is unsubscribed. You will receive no more letters from {organisation}.",
            "page_already": "{address} is not subscribed to the letters of {organisation}.",
            "page_resubscribe_offer": "Unsubscribed by mistake?",
            "page_resubscribe": "Subscribe again",
            "page_resubscribed": "{address} is subscribed again to the letters of {organisation}.",
            "page_test_copy": "This is a test copy of the letter: in real letters this link unsubscribes the reader. Nothing was changed.",
        },
    ),
}


def format_number(n: int, digits: str) -> str:
    text = str(n)
    if digits == "arabic-indic":
        text = text.translate(ARABIC_INDIC_DIGITS)
    return text


def month_name(code: str, month: int, style: str | None = None) -> str:
    """The month's name in `style` (one of DATE_STYLES[code]; "both" pairs every set)."""
    sets = MONTHS[code]
    chosen = list(sets) if style in (None, "both") else [style]
    return " ".join(sets[name][month - 1] for name in chosen)


_ARABIC_MARKS = re.compile("[\u0640\u064b-\u065f\u0670]")  # tatweel and harakat
_ALEFS = str.maketrans("أإآٱ", "اااا")


def loose(text: str) -> str:
    """A header or value as it is compared: case, spaces, punctuation, Arabic marks and alef forms aside."""
    text = _ARABIC_MARKS.sub("", unicodedata.normalize("NFKC", text)).translate(_ALEFS).casefold()
    return "".join(ch for ch in text if ch.isalnum())


def format_month(language: Language, year: int, month: int, digits: str, style: str | None = None) -> str:
    return f"{month_name(language.code, month, style)} {format_number(year, digits)}"


# What the sign-up, confirmation and preference pages, the confirmation message (mail_*) and the
# message to someone already subscribed (known_*) say, in each language. `{organisation}`, `{address}` and `{choice}` are filled in escaped.
WORDS: dict[str, dict[str, str]] = {
    "ar": {
        "signup_title": "الاشتراك في رسائل {organisation}",
        "signup_intro": "اكتب عنوان بريدك الإلكتروني لتصلك رسائلنا. سنرسل إليك رسالة فيها رابط لتأكيد الاشتراك.",
        "email": "البريد الإلكتروني",
        "name": "الاسم (اختياري)",
        "language": "لغة الرسائل",
        "choice_ar": "العربية",
        "choice_en": "الإنجليزية",
        "choice_both": "العربية والإنجليزية معًا",
        "subscribe": "اشترك",
        "honeypot": "اترك هذا الحقل فارغًا",
        "check_title": "تحقّق من بريدك",
        "check_inbox": "إذا كان العنوان صحيحًا فستصله خلال دقائق رسالة فيها رابط لتأكيد الاشتراك. لن تصلك رسائلنا قبل أن تؤكّده. صلاحية الرابط سبعة أيام.",
        "bad_email": "تحقّق من عنوان البريد الإلكتروني: لا يبدو صحيحًا.",
        "no_consent": "للاشتراك، ضع علامة على جملة الموافقة.",
        "too_many": "وصل عدد كبير من طلبات الاشتراك في وقت قصير. حاول مرة أخرى بعد عشر دقائق.",
        "confirm_title": "تأكيد الاشتراك",
        "confirm_question": "هل تريد تأكيد اشتراك العنوان {address} في رسائل {organisation}؟",
        "confirm_button": "تأكيد الاشتراك",
        "confirmed": "تم. العنوان {address} مشترك في رسائل {organisation}، وستصله الرسائل {choice}. في كل رسالة رابط لتغيير اللغة أو إلغاء الاشتراك.",
        "confirmed_every": "تم. العنوان {address} مشترك في رسائل {organisation}، وستصله الرسائل {choice}. في كل رسالة رابط لإلغاء الاشتراك.",
        "link_expired": "انتهت صلاحية هذا الرابط، ولم يتغيّر شيء. يمكنك طلب الاشتراك من جديد.",
        "link_invalid": "هذا الرابط غير صالح، ولم يتغيّر شيء. تأكّد من نسخه كاملًا من الرسالة.",
        "link_used": "هذا الرابط استُخدم من قبل أو حلّ محلّه رابط أحدث، ولم يتغيّر شيء.",
        "signup_again": "الاشتراك من جديد",
        "preferences": "لغة الرسائل",
        "language_now": "تصلك الرسائل {choice}.",
        "save": "حفظ",
        "language_saved": "حُفظ اختيارك: ستصل الرسالة القادمة {choice}.",
        "in_ar": "بالعربية",
        "in_en": "بالإنجليزية",
        "in_both": "بالعربية والإنجليزية معًا",
        "leave": "إلغاء الاشتراك",
        "mail_subject": "أكّد اشتراكك في رسائل {organisation}",
        "mail_hello": "طلب أحدٌ، وربما أنت، أن تصل رسائل {organisation} إلى هذا العنوان.",
        "mail_action": "لتأكيد الاشتراك افتح هذا الرابط واضغط زر التأكيد:",
        "mail_button": "تأكيد الاشتراك",
        "mail_ignore": "صلاحية الرابط سبعة أيام. إذا لم تطلب ذلك فتجاهل هذه الرسالة: لن يصلك منّا شيء دون تأكيدك.",
        "known_subject": "أنت مشترك من قبل في رسائل {organisation}",
        "known_hello": "طلب أحدٌ، وربما أنت، أن تصل رسائل {organisation} إلى هذا العنوان. العنوان مشترك من قبل، ولم يتغيّر شيء.",
        "known_action": "لتغيير لغة الرسائل أو لإلغاء الاشتراك افتح صفحتك:",
        "known_button": "صفحتك",
        "known_ignore": "إذا لم تطلب ذلك فتجاهل هذه الرسالة: ستصلك رسائلنا كما كانت.",
    },
    "en": {
        "signup_title": "Subscribe to the letters of {organisation}",
        "signup_intro": "Enter your email address to receive our letters. We will send you a message with a link to confirm.",
        "email": "Email address",
        "name": "Name (optional)",
        "language": "Language of the letters",
        "choice_ar": "Arabic",
        "choice_en": "English",
        "choice_both": "Both Arabic and English",
        "subscribe": "Subscribe",
        "honeypot": "Leave this field empty",
        "check_title": "Check your inbox",
        "check_inbox": "If the address is right, a message with a link to confirm will reach it in a few minutes. You will receive no letters until you confirm. The link works for seven days.",
        "bad_email": "Please check the email address: it does not look right.",
        "no_consent": "To subscribe, tick the consent sentence.",
        "too_many": "Too many sign-ups in a short time. Please try again in ten minutes.",
        "confirm_title": "Confirm your subscription",
        "confirm_question": "Confirm the subscription of {address} to the letters of {organisation}?",
        "confirm_button": "Confirm",
        "confirmed": "Done: {address} is subscribed to the letters of {organisation}, and will receive them {choice}. Every letter has a link to change the language or leave.",
        "confirmed_every": "Done: {address} is subscribed to the letters of {organisation}, and will receive them {choice}. Every letter has a link to leave.",
        "link_expired": "This link has expired; nothing was changed. You can sign up again.",
        "link_invalid": "This link is not valid; nothing was changed. Check that it was copied whole from the message.",
        "link_used": "This link was used already or replaced by a newer one; nothing was changed.",
        "signup_again": "Sign up again",
        "preferences": "Language of the letters",
        "language_now": "You receive the letters {choice}.",
        "save": "Save",
        "language_saved": "Saved: the next letter will reach you {choice}.",
        "in_ar": "in Arabic",
        "in_en": "in English",
        "in_both": "in Arabic and English",
        "leave": "Leave",
        "mail_subject": "Confirm your subscription to the letters of {organisation}",
        "mail_hello": "Someone, probably you, asked for the letters of {organisation} to be sent to this address.",
        "mail_action": "To confirm, open this link and press the button:",
        "mail_button": "Confirm",
        "mail_ignore": "The link works for seven days. If it was not you, ignore this message: nothing will be sent to you without your confirmation.",
        "known_subject": "You are already subscribed to the letters of {organisation}",
        "known_hello": "Someone, probably you, asked for the letters of {organisation} to be sent to this address. It is subscribed already; nothing has changed.",
        "known_action": "To change the language of the letters or to leave, open your page:",
        "known_button": "Your page",
        "known_ignore": "If it was not you, ignore this message: the letters will reach you as before.",
    },
}


def word(code: str, key: str) -> str:
    return (WORDS.get(code) or WORDS["en"])[key]


# --- runs of the other script kept in order -------------------------------------------------

_URL = r"(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?،؛)\]}'»”]"
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# international (+…, 00…) or local numbers in groups: 011 234 5678, 06-12-34-56
_PHONE = r"(?:\+|00)\d[\d \-.()]{5,}\d|\d{2,4}(?:[ -]\d{2,4}){2,}"
_LATIN_WORD = r"[A-Za-z][A-Za-z0-9'’&/+_-]*"
_LATIN_RUN = rf"{_LATIN_WORD}(?:[ \u00a0.,:&-]+(?:{_LATIN_WORD}|\d+\b))*"  # no-break spaces: titles' last words

LATIN_RUN = re.compile(f"(?P<url>{_URL})|(?P<email>{_EMAIL})|(?P<phone>{_PHONE})|{_LATIN_RUN}")
# what a reader would take for a link, typos included (`http//…`, `https:/…`), for `check`
URL_LIKE = re.compile(rf"{_EMAIL}|\b(?:https?(?::/{{0,2}}|//)|www\.)[^\s<>\"]*[^\s<>\".,;:!?،؛)\]}}'»”]")

_ARABIC_LETTERS = "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff"
_ARABIC_WORD = rf"[{_ARABIC_LETTERS}][{_ARABIC_LETTERS}\u064B-\u065F]*"
ARABIC_RUN = re.compile(rf"{_ARABIC_WORD}(?:[\s،]+{_ARABIC_WORD})*")
HAS_ARABIC = re.compile(f"[{_ARABIC_LETTERS}]")

LRM = "\u200e"
RLM = "\u200f"
NOWRAP_MAX = 24  # characters: a run this short fits a 320 px phone's column on one line
_BREAKS = re.compile(r"[\s/-]")


def _pattern_for(direction: str) -> re.Pattern[str]:
    return LATIN_RUN if direction == "rtl" else ARABIC_RUN


def _keep_together(match: re.Match[str]) -> bool:
    """A short run that a line could break inside (a phone number, a code such as `COVID-19`)."""
    text = match.group()
    link = match.re is LATIN_RUN and (match.group("url") or match.group("email"))
    return not link and len(text) <= NOWRAP_MAX and bool(_BREAKS.search(text))


# In left-to-right text, phone numbers too: kept on one line, and left to right when their digits are Arabic.
_ARABIC_OR_PHONE = re.compile(f"(?P<phone>{_PHONE})|{ARABIC_RUN.pattern}")
PHONE = re.compile(_PHONE)


def ltr_digits(number: str) -> str:
    """A number in Arabic-Indic digits (٠٩٣٣ ١٢٣ ٤٥٦) kept left to right: between two groups of
    them a space takes their right-to-left pull, even inside dir="ltr", and the groups swap;
    strong marks around each sign that is not a digit hold them in order."""
    if all(ch.isascii() for ch in number if ch.isdigit()):
        return number
    return re.sub(r"\D", lambda sign: f"{LRM}{sign.group()}{LRM}", number)


def wrap_html(text: str, direction: str) -> str:
    """Escape `text` for HTML, wrapping runs of the opposite direction, and phone numbers, in a dir span."""
    other = "ltr" if direction == "rtl" else "rtl"
    out: list[str] = []
    pos = 0
    for match in (LATIN_RUN if direction == "rtl" else _ARABIC_OR_PHONE).finditer(text):
        out.append(escape(text[pos : match.start()], quote=False))
        style = ' style="white-space:nowrap"' if _keep_together(match) else ""
        run, run_dir = (ltr_digits(match.group()), "ltr") if match.group("phone") else (match.group(), other)
        out.append(f'<span dir="{run_dir}"{style}>{escape(run, quote=False)}</span>')
        pos = match.end()
    out.append(escape(text[pos:], quote=False))
    return "".join(out)


NBSP = "\u00a0"
TITLE_TAIL_MAX = 20  # characters: the last words of a title at 22 px still fit a 320 px phone's line


def keep_last_words(title: str) -> str:
    """A title whose last word never stands alone on its last line ("December 2022" and "ديسمبر 2022"
    kept together): a no-break space before it, and before a dash in front of it, when the words
    it joins fit a phone's line."""
    words = title.split(" ")
    take = 2
    while take < len(words) and not any(ch.isalnum() for ch in words[-take]):
        take += 1  # "Update – 2022": the dash goes with the word before it
    tail = NBSP.join(words[-take:])
    if len(words) < 2 or len(tail) > TITLE_TAIL_MAX:
        return title
    return " ".join([*words[:-take], tail])


def isolate_link(target: str, direction: str, *, opening: str = "<", closing: str = ">") -> str:
    """A URL or address shown in plain text of `direction`: in right-to-left text delimited
    (`<…>` or `(…)`) with the marks outside, so that no mark touches the URL."""
    if direction != "rtl":
        return target if opening == "<" else f"{opening}{target}{closing}"
    return f"{LRM}{opening}{target}{closing}{LRM}"


def mark_text(text: str, direction: str) -> str:
    """Plain-text counterpart of wrap_html: strong marks on both sides of each foreign run
    (URLs and addresses delimited first: see isolate_link)."""
    if direction != "rtl":
        return text

    def marked(match: re.Match[str]) -> str:
        if match.group("url") or match.group("email"):
            return isolate_link(match.group(), direction)
        return f"{LRM}{match.group()}{LRM}"

    return LATIN_RUN.sub(marked, text)


def is_foreign(text: str, direction: str) -> bool:
    """True when `text` is entirely a run of the other direction (e.g. a Latin link label in Arabic)."""
    text = text.strip()
    if not text:
        return False
    match = _pattern_for(direction).fullmatch(text)
    return match is not None
