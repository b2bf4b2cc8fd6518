"""The English catalog (msgids are French): complete, compiled, placeholders kept. Reads the
files directly, so it needs no gettext tools."""

import ast
import gettext
import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
PO = BASE_DIR / "locale" / "en" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def po_entries():
    """(flags, msgid, msgid_plural, [msgstr...]) for each live entry of the .po file."""
    entries = []
    for block in PO.read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in block.strip().splitlines() if not line.startswith("#~")]
        if not any(line.startswith("msgid ") for line in lines):
            continue
        flags = " ".join(line for line in lines if line.startswith("#,"))
        fields, current = {}, None
        for line in lines:
            match = re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d+\])?) (".*")$', line)
            if match:
                current = match.group(1)
                fields[current] = ast.literal_eval(match.group(2))
            elif line.startswith('"') and current:
                fields[current] += ast.literal_eval(line)
        if fields["msgid"] == "":
            continue  # the header
        msgstrs = [value for key, value in sorted(fields.items()) if key.startswith("msgstr")]
        entries.append((flags, fields["msgid"], fields.get("msgid_plural"), msgstrs))
    return entries


ENTRIES = po_entries()


def placeholders(text):
    return sorted(re.findall(r"%\([a-z_]+\)[sd]", text))


def test_the_catalog_is_not_empty():
    assert len(ENTRIES) > 100


def test_every_message_is_translated_keeping_its_placeholders():
    fuzzy = [msgid for flags, msgid, _plural, _msgstrs in ENTRIES if "fuzzy" in flags]
    untranslated = [msgid for _f, msgid, _p, msgstrs in ENTRIES if not msgstrs or not all(msgstrs)]
    broken = [
        msgid for _f, msgid, _p, msgstrs in ENTRIES
        if any(placeholders(msgstr) != placeholders(msgid) for msgstr in msgstrs if msgstr)
    ]
    assert (fuzzy, untranslated, broken) == ([], [], [])


def test_the_compiled_catalog_matches_the_po_file():
    with MO.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for _flags, msgid, plural, msgstrs in ENTRIES:
        if plural:
            assert compiled.ngettext(msgid, plural, 1) == msgstrs[0], msgid
            assert compiled.ngettext(msgid, plural, 5) == msgstrs[1], msgid
        else:
            assert compiled.gettext(msgid) == msgstrs[0], msgid


def test_every_translate_tag_of_the_templates_is_in_the_catalog():
    """A cheap stand-in for makemessages: a {% translate "..." %} added to a template after
    the catalog was made shows up here (run makemessages, translate, compilemessages)."""
    known = {msgid for _flags, msgid, _plural, _msgstrs in ENTRIES}
    missing = set()
    for template in (BASE_DIR / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for match in re.finditer(r'{%\s*(?:translate|trans)\s+"([^"]+)"', text):
            if match.group(1) not in known:
                missing.add((template.relative_to(BASE_DIR).as_posix(), match.group(1)))
    assert not missing


def test_the_french_side_shows_the_msgids_as_written():
    """No French catalog for our strings: a msgid that happened to match an (English) msgid
    of Django's or allauth's French catalogs would be rewritten behind our back."""
    from django.utils import translation

    # Admin pages reuse Django admin's own (English) breadcrumb msgid, translated by Django.
    borrowed_from_django_admin = {"Home"}
    rewritten = {}
    with translation.override("fr"):
        for _flags, msgid, plural, _msgstrs in ENTRIES:
            if msgid in borrowed_from_django_admin:
                continue
            shown = translation.ngettext(msgid, plural, 2) if plural else translation.gettext(msgid)
            if shown != (plural or msgid):
                rewritten[msgid] = shown
    assert rewritten == {}
