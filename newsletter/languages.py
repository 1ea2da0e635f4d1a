"""Languages the templates know: direction, alignment and the few words the layout needs."""

from __future__ import annotations

from dataclasses import dataclass, field

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


def format_month(language: Language, year: int, month: int, digits: str, style: str | None = None) -> str:
    return f"{month_name(language.code, month, style)} {format_number(year, digits)}"
