"""`newsletter signup-form`: the sign-up form as plain HTML for an organisation's own site: no
script, no style sheet, nothing fetched; it posts to the /subscribe of `newsletter serve`, which
answers with its own pages. The honeypot is hidden by an inline style, so the form works pasted
anywhere."""

from __future__ import annotations

import jinja2

from newsletter.config import Config
from newsletter.keys import SUBSCRIBE_ROUTE
from newsletter.web.pages import Pages

_FORM = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(
    """\
{% for block in blocks %}
<form method="post" action="{{ block.form.action }}" lang="{{ block.lang }}" dir="{{ block.dir }}" accept-charset="utf-8">
  <p>{{ block.intro }}</p>
  <input type="hidden" name="form_language" value="{{ block.lang }}">
  {% for field in block.form.fields %}
  {% if field.kind == "email" %}
  <p><label>{{ field.label }}<br><input type="email" name="email" required maxlength="320" dir="ltr" autocomplete="email"></label></p>
  {% elif field.kind == "text" %}
  <p><label>{{ field.label }}<br><input type="text" name="name" maxlength="200" dir="auto" autocomplete="name"></label></p>
  {% elif field.kind == "choice" %}
  <fieldset>
    <legend>{{ field.label }}</legend>
    {% for value, label in field.options %}
    <label><input type="radio" name="language" value="{{ value }}"{% if value == field.value %} checked{% endif %}> {{ label }}</label><br>
    {% endfor %}
  </fieldset>
  {% elif field.kind == "checkbox" %}
  <p><label><input type="checkbox" name="consent" value="yes" required> {{ field.label }}</label></p>
  {% elif field.kind == "honeypot" %}
  <div style="position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap" aria-hidden="true"><label>{{ field.label }} <input type="text" name="website" value="" tabindex="-1" autocomplete="off"></label></div>
  {% endif %}
  {% endfor %}
  <p><button type="submit">{{ block.form.label }}</button></p>
</form>
{% endfor %}
"""
)


def signup_form_html(config: Config, codes: list[str] | None = None) -> str:
    """The form in each of `codes` (default: every language, the primary first)."""
    pages = Pages(config)
    action = config.base_url + SUBSCRIBE_ROUTE
    blocks = []
    for code in codes or list(config.codes):
        language = pages.language(code)
        blocks.append(
            {
                "lang": language.code,
                "dir": language.dir,
                "intro": pages.say(language, "signup_intro"),
                "form": pages.signup_form(language, action),
            }
        )
    return _FORM.render(blocks=blocks)
