"""Factur-X for professional customers (DESIGN §14): the EN 16931 Cross Industry Invoice XML
of an invoice or a credit note (type codes 380 and 381), and its embedding in the PDF, which
the ``factur-x`` library makes a PDF/A-3 (the attachment, its relationship and the XMP).

The XML is made from the same ``billing.documents.Document`` as the page and the PDF, so its
totals are theirs. A credit note's amounts are positive in it: the type code says it credits.
VAT category: "AE" with its exemption reason under reverse charge, "S" for a rate above zero,
"O" (outside the scope of French VAT: a customer outside the EU) otherwise."""

import xml.etree.ElementTree as ET
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from tempfile import NamedTemporaryFile

import facturx
from django.conf import settings
from django.utils.translation import gettext as _
from PIL import ImageCms
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from billing.documents import Document
from billing.vat import vat_day

LEVEL = "en16931"
RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
for _prefix, _uri in (("rsm", RSM), ("ram", RAM), ("udt", UDT), ("qdt", QDT)):
    ET.register_namespace(_prefix, _uri)

INVOICE_TYPE, CREDIT_NOTE_TYPE = "380", "381"  # UNTDID 1001
BANK_CARD = "48"  # UNTDID 4461: payment means
SIREN_SCHEME, SIRET_SCHEME = "0002", "0009"  # ISO 6523 identifier schemes
PAID_TO_DATE = "72"  # UNTDID 2005: VAT on services is due when paid (French "encaissements")
NOT_SUBJECT = "O"  # UNCL 5305: services outside the scope of tax


def _el(parent, tag, text=None, namespace=RAM, **attributes):
    element = ET.SubElement(parent, f"{{{namespace}}}{tag}", attributes)
    if text is not None:
        element.text = str(text)
    return element


def _amount(cents) -> str:
    return f"{Decimal(abs(cents)) / 100:.2f}"


def _rate(rate) -> str:
    return f"{Decimal(rate):.2f}"


def _date(parent, tag, moment, namespace=UDT):
    wrapper = _el(parent, tag)
    _el(wrapper, "DateTimeString", vat_day(moment).strftime("%Y%m%d"), namespace=namespace,
        format="102")


def _digits(text) -> str:
    return "".join(text.split())


def vat_category(document: Document, rate) -> tuple[str, str, str]:
    """(UNCL 5305 category, exemption reason, VATEX reason code) of a rate of the document."""
    if document.reverse_charge:
        return "AE", document.reverse_charge_mention, "VATEX-EU-AE"
    if Decimal(rate) > 0:
        return "S", "", ""
    return NOT_SUBJECT, _("Hors du champ de la TVA française"), "VATEX-EU-O"


def _address(party, *, lines, postal_code="", city="", country):
    address = _el(party, "PostalTradeAddress")
    if postal_code:
        _el(address, "PostcodeCode", postal_code)
    lines = list(lines)
    # Three address lines at most: what is left goes on the third.
    for tag, line in zip(("LineOne", "LineTwo"), lines[:2], strict=False):
        _el(address, tag, line)
    if len(lines) > 2:
        _el(address, "LineThree", ", ".join(lines[2:]))
    if city:
        _el(address, "CityName", city)
    _el(address, "CountryID", country)


def _seller(agreement, document: Document, *, with_vat_number: bool):
    seller = document.seller
    party = _el(agreement, "SellerTradeParty")
    _el(party, "Name", seller["name"])
    _el(party, "Description", f"{document.seller_identity}, {seller['rcs']}")
    organization = _el(party, "SpecifiedLegalOrganization")
    _el(organization, "ID", _digits(seller["siren"]), schemeID=SIREN_SCHEME)
    _address(party, lines=[seller["street"]], postal_code=seller["postal_code"],
             city=seller["city"], country=seller["country"])
    communication = _el(party, "URIUniversalCommunication")
    _el(communication, "URIID", settings.SUPPORT_EMAIL, schemeID="EM")
    if with_vat_number:
        registration = _el(party, "SpecifiedTaxRegistration")
        _el(registration, "ID", _digits(seller["vat_number"]), schemeID="VA")


def _buyer(agreement, document: Document, *, with_vat_number: bool):
    customer = document.customer
    party = _el(agreement, "BuyerTradeParty")
    _el(party, "Name", customer.company or customer.name)
    siren = _digits(customer.siren)
    if siren:
        organization = _el(party, "SpecifiedLegalOrganization")
        _el(organization, "ID", siren,
            schemeID=SIRET_SCHEME if len(siren) == 14 else SIREN_SCHEME)
    if customer.company and customer.name:
        contact = _el(party, "DefinedTradeContact")
        _el(contact, "PersonName", customer.name)
    _address(party, lines=customer.address_lines, country=customer.country)
    if with_vat_number and customer.vat_number:
        registration = _el(party, "SpecifiedTaxRegistration")
        _el(registration, "ID", customer.vat_number, schemeID="VA")


def _line_item(transaction, number, line, document: Document):
    item = _el(transaction, "IncludedSupplyChainTradeLineItem")
    _el(_el(item, "AssociatedDocumentLineDocument"), "LineID", number)
    _el(_el(item, "SpecifiedTradeProduct"), "Name", line.description)
    agreement = _el(item, "SpecifiedLineTradeAgreement")
    _el(_el(agreement, "NetPriceProductTradePrice"), "ChargeAmount", _amount(line.net_cents))
    _el(_el(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", "1", unitCode="C62")
    settlement = _el(item, "SpecifiedLineTradeSettlement")
    tax = _el(settlement, "ApplicableTradeTax")
    _el(tax, "TypeCode", "VAT")
    category = vat_category(document, line.vat_rate)[0]
    _el(tax, "CategoryCode", category)
    if category != NOT_SUBJECT:  # no rate for what is not subject to VAT (BR-O-05)
        _el(tax, "RateApplicablePercent", _rate(line.vat_rate))
    period = _el(settlement, "BillingSpecifiedPeriod")
    _date(period, "StartDateTime", document.period_start)
    _date(period, "EndDateTime", document.period_end)
    summation = _el(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
    _el(summation, "LineTotalAmount", _amount(line.net_cents))


def _settlement(transaction, document: Document):
    settlement = _el(transaction, "ApplicableHeaderTradeSettlement")
    _el(settlement, "InvoiceCurrencyCode", document.currency)
    means = _el(settlement, "SpecifiedTradeSettlementPaymentMeans")
    _el(means, "TypeCode", BANK_CARD)
    if document.payment is not None:
        _el(means, "Information", document.payment.method)
        if document.payment.last4:
            _el(_el(means, "ApplicableTradeSettlementFinancialCard"), "ID",
                document.payment.last4)
    for vat in document.vat_amounts:
        category, reason, reason_code = vat_category(document, vat.rate)
        tax = _el(settlement, "ApplicableTradeTax")
        _el(tax, "CalculatedAmount", _amount(vat.vat_cents))
        _el(tax, "TypeCode", "VAT")
        if reason:
            _el(tax, "ExemptionReason", reason)
        _el(tax, "BasisAmount", _amount(vat.net_cents))
        _el(tax, "CategoryCode", category)
        if reason_code:
            _el(tax, "ExemptionReasonCode", reason_code)
        if category == "S":
            _el(tax, "DueDateTypeCode", PAID_TO_DATE)
        if category != NOT_SUBJECT:
            _el(tax, "RateApplicablePercent", _rate(vat.rate))
    period = _el(settlement, "BillingSpecifiedPeriod")
    _date(period, "StartDateTime", document.period_start)
    _date(period, "EndDateTime", document.period_end)
    if not document.is_credit_note:
        terms = _el(settlement, "SpecifiedTradePaymentTerms")
        _el(terms, "Description", _("Paiement par carte bancaire à l'émission de la facture."))
        _date(terms, "DueDateDateTime", document.issued_at)
    summation = _el(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(summation, "LineTotalAmount", _amount(sum(line.net_cents for line in document.lines)))
    _el(summation, "TaxBasisTotalAmount", _amount(document.net_cents))
    _el(summation, "TaxTotalAmount", _amount(document.vat_cents), currencyID=document.currency)
    _el(summation, "GrandTotalAmount", _amount(document.total_cents))
    prepaid = document.total_cents if document.paid else 0
    _el(summation, "TotalPrepaidAmount", _amount(prepaid))
    _el(summation, "DuePayableAmount", _amount(abs(document.total_cents) - abs(prepaid)))
    if document.corrects is not None:
        reference = _el(settlement, "InvoiceReferencedDocument")
        _el(reference, "IssuerAssignedID", document.corrects.number)
        _date(reference, "FormattedIssueDateTime", document.corrects.issued_at, namespace=QDT)


def facturx_xml(document: Document) -> bytes:
    """The document's CII XML at the EN 16931 level, in the active language."""
    root = ET.Element(f"{{{RSM}}}CrossIndustryInvoice")
    context = _el(root, "ExchangedDocumentContext", namespace=RSM)
    _el(_el(context, "GuidelineSpecifiedDocumentContextParameter"), "ID",
        "urn:cen.eu:en16931:2017")
    header = _el(root, "ExchangedDocument", namespace=RSM)
    _el(header, "ID", document.number)
    _el(header, "TypeCode", CREDIT_NOTE_TYPE if document.is_credit_note else INVOICE_TYPE)
    _date(header, "IssueDateTime", document.issued_at)
    for subject, text in document.notes:
        note = _el(header, "IncludedNote")
        _el(note, "Content", text)
        if subject:
            _el(note, "SubjectCode", subject)

    transaction = _el(root, "SupplyChainTradeTransaction", namespace=RSM)
    for number, line in enumerate(document.lines, start=1):
        _line_item(transaction, number, line, document)
    agreement = _el(transaction, "ApplicableHeaderTradeAgreement")
    # Not subject to VAT ("O"): neither party's VAT number is given (EN 16931 BR-O-02).
    in_scope = any(vat_category(document, vat.rate)[0] != NOT_SUBJECT
                   for vat in document.vat_amounts)
    _seller(agreement, document, with_vat_number=in_scope)
    _buyer(agreement, document, with_vat_number=in_scope)
    _el(transaction, "ApplicableHeaderTradeDelivery")
    _settlement(transaction, document)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


@cache
def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _with_output_intent(pdf: bytes) -> bytes:
    """PDF/A wants the colour space of the device colours declared: sRGB, the one reportlab's
    are meant in."""
    writer = PdfWriter(clone_from=BytesIO(pdf))
    profile = DecodedStreamObject()
    profile.set_data(_srgb_profile())
    profile.update({NameObject("/N"): NumberObject(3)})
    intent = DictionaryObject({
        NameObject("/Type"): NameObject("/OutputIntent"),
        NameObject("/S"): NameObject("/GTS_PDFA1"),
        NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB"),
        NameObject("/Info"): TextStringObject("sRGB IEC61966-2.1"),
        NameObject("/DestOutputProfile"): writer._add_object(profile.flate_encode()),
    })
    writer._root_object[NameObject("/OutputIntents")] = ArrayObject(
        [writer._add_object(intent)])
    output = BytesIO()
    writer.write(output)
    return output.getvalue()


def facturx_pdf(pdf: bytes, document: Document, *, language: str) -> bytes:
    """The PDF as a Factur-X: a PDF/A-3 with the document's XML embedded (checked against the
    library's EN 16931 XSD first: an invalid XML is an error, never a silent plain PDF).

    Through ``generate_from_file`` and an output file: ``generate_from_binary`` writes its
    result into its input file at wherever pypdf left the position, so what it returns starts
    with a piece of the original PDF (akretion/factur-x#24)."""
    seller = document.seller["name"]
    with NamedTemporaryFile(prefix="facturx-", suffix=".pdf") as output:
        facturx.generate_from_file(
            BytesIO(_with_output_intent(pdf)),
            facturx_xml(document),
            flavor="factur-x",
            level=LEVEL,
            check_xsd=True,
            pdf_metadata={
                "author": seller,
                "keywords": "Factur-X",
                "title": f"{seller}: {document.title}",
                "subject": document.title,
            },
            lang=language,
            output_pdf_file=output.name,
        )
        return Path(output.name).read_bytes()
