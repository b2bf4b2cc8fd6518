"""An invoice as a PDF document: what its page shows, on one A4 page (DESIGN §9)."""

from functools import cache
from io import BytesIO
from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from billing.templatetags.money import money, vat_percent
from formats.dates import long_date

# Bitstream Vera ships with reportlab; unlike the PDF core fonts it is embedded, so any
# reader shows "€", accents and the non-breaking spaces of French amounts the same way.
FONT, BOLD = "PortalSans", "PortalSans-Bold"
INK, MUTED, LINE, SHADE = (colors.HexColor(c) for c in ("#1d2330", "#5b6475", "#d9dee7",
                                                        "#f5f7fa"))
WIDTH = A4[0] - 36 * mm


@cache
def _register_fonts() -> None:
    fonts = Path(reportlab.__file__).parent / "fonts"
    pdfmetrics.registerFont(TTFont(FONT, fonts / "Vera.ttf"))
    pdfmetrics.registerFont(TTFont(BOLD, fonts / "VeraBd.ttf"))


def _style(size=9.5, *, bold=False, color=INK, align=TA_LEFT, leading=None) -> ParagraphStyle:
    return ParagraphStyle("pdf", fontName=BOLD if bold else FONT, fontSize=size,
                          leading=leading or size * 1.35, textColor=color, alignment=align)


TEXT = _style()
STRONG = _style(bold=True)
LABEL = _style(8.5, color=MUTED)
LABEL_RIGHT = _style(8.5, color=MUTED, align=TA_RIGHT)
HEADING = _style(11, bold=True, leading=16)
TITLE = _style(16, bold=True, leading=21)
NUMBER = _style(align=TA_RIGHT)
NUMBER_STRONG = _style(bold=True, align=TA_RIGHT)


def _p(text, style=TEXT) -> Paragraph:
    # The core fonts' narrow no-break space (French thousands) is not in Vera: a no-break
    # space reads the same.
    return Paragraph(escape(str(text)).replace("\u202f", "\u00a0"), style)


def _amount(cents, invoice, style=NUMBER) -> Paragraph:
    return _p(money(cents, invoice.currency), style)


def _day(instant) -> str:
    return long_date(instant)


def _facts(rows) -> Table:
    table = Table([[_p(label, LABEL), _p(value)] for label, value in rows],
                  colWidths=[34 * mm, None])
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
    ]))
    return table


def _party(heading, name, rows) -> list:
    """A heading, a name in bold, then lines of text or of (label, value)."""
    lines = [row if isinstance(row, str) else " ".join(map(str, row)) for row in rows]
    return [_p(heading, LABEL), _p(name, STRONG), *map(_p, lines)]


def _grid(rows, col_widths, *, header=True) -> Table:
    table = Table(rows, colWidths=col_widths, repeatRows=1 if header else 0)
    commands = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.5, LINE),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), SHADE))
    table.setStyle(TableStyle(commands))
    return table


def _story(invoice, vendor) -> list:
    customer = invoice.customer
    title = _("Facture %(number)s") % {"number": invoice.number}
    facts = [
        (_("Date d'émission"), _day(invoice.issued_at)),
        (_("Période couverte"), f"{_day(invoice.period_start)} – {_day(invoice.period_end)}"),
        (_("Statut"), invoice.get_status_display()),
    ]
    if invoice.paid_at:
        facts.append((_("Date de paiement"), _day(invoice.paid_at)))
    header = Table([[_p(title, TITLE), _facts(facts)]], colWidths=[WIDTH * 0.48, WIDTH * 0.52])
    header.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                ("LEFTPADDING", (0, 0), (-1, -1), 0)]))

    parties = Table([[
        _party(_("Vendeur"), vendor["name"], [
            vendor["address"],
            ("SIRET", vendor["siret"]),
            (_("TVA intracommunautaire"), vendor["vat_number"]),
        ]),
        "",
        _party(_("Client"), customer.get_full_name() or customer.email, [
            customer.email,
            (_("Numéro client"), customer.customer_number),
            (_("Pays de facturation"), customer.get_billing_country_display()),
        ]),
    ]], colWidths=[WIDTH / 2 - 3 * mm, 6 * mm, WIDTH / 2 - 3 * mm], spaceBefore=6 * mm)
    parties.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BOX", (0, 0), (0, 0), 0.5, LINE),
        ("BOX", (2, 0), (2, 0), 0.5, LINE),
        ("LEFTPADDING", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 6),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
    ]))

    rate = vat_percent(invoice.vat_rate)
    lines = [[_p(_("Désignation"), LABEL), _p(_("Montant HT"), LABEL_RIGHT),
              _p(_("Taux de TVA"), LABEL_RIGHT), _p(_("Montant TVA"), LABEL_RIGHT),
              _p(_("Montant TTC"), LABEL_RIGHT)]]
    for line in invoice.lines.all():
        lines.append([_p(line.description), _amount(line.net_cents, invoice),
                      _p(_("%(rate)s %%") % {"rate": rate}, NUMBER),
                      _amount(line.vat_cents, invoice), _amount(line.total_cents, invoice)])
    totals = _grid([
        [_p(_("Total HT")), _amount(invoice.net_cents, invoice)],
        [_p(_("TVA %(rate)s %%") % {"rate": rate}), _amount(invoice.vat_cents, invoice)],
        [_p(_("Total TTC"), STRONG), _amount(invoice.total_cents, invoice, NUMBER_STRONG)],
    ], [45 * mm, 32 * mm], header=False)
    totals.hAlign = "RIGHT"

    story = [
        header,
        parties,
        Spacer(1, 8 * mm),
        _grid(lines, [None, 30 * mm, 24 * mm, 28 * mm, 30 * mm]),
        Spacer(1, 3 * mm),
        totals,
    ]
    credit_notes = list(invoice.credit_notes.all())
    if credit_notes:
        story += [
            Spacer(1, 8 * mm),
            _p(_("Avoirs"), HEADING),
            _grid([[_p(_("Numéro"), LABEL), _p(_("Date"), LABEL),
                    _p(_("Montant TTC"), LABEL_RIGHT)]] + [
                [_p(note.number), _p(_day(note.issued_at)), _amount(note.total_cents, invoice)]
                for note in credit_notes
            ], [50 * mm, None, 35 * mm]),
        ]
    return story


def invoice_pdf(*, invoice) -> bytes:
    """The invoice in its customer's preferred language, as the bytes of a PDF file."""
    _register_fonts()
    vendor = settings.VENDOR
    language = invoice.customer.preferred_language or settings.LANGUAGE_CODE
    buffer = BytesIO()
    with translation.override(language):
        document = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=18 * mm,
            rightMargin=18 * mm,
            topMargin=18 * mm,
            bottomMargin=18 * mm,
            title=_("Facture %(number)s") % {"number": invoice.number},
            author=vendor["name"],
            lang=language,
        )
        document.build(_story(invoice, vendor))
    return buffer.getvalue()
