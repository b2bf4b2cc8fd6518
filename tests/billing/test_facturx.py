"""Factur-X for professional customers (DESIGN §14): their invoice and credit note PDFs are
PDF/A-3 with the EN 16931 CII XML embedded, valid against the factur-x library's XSD, with the
document's own totals; a consumer keeps the plain PDF."""

from decimal import Decimal
from io import BytesIO

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from billing.models import CreditNote
from billing.pdf import credit_note_pdf, invoice_pdf
from billing.services import payment_method_add
from subscriptions.services import subscription_cancel
from subscriptions.services.renew import subscription_renew
from tests.billing.documents import (
    consumer,
    french_business,
    paid_invoice,
    reverse_charge_invoice,
)
from tests.factories import UserFactory, card_token, days, subscribed

pytestmark = pytest.mark.django_db

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
SUMMATION = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"


def _embedded_xml(pdf: bytes) -> bytes:
    """The factur-x.xml attachment, found by pypdf and by the factur-x library alike."""
    attachments = PdfReader(BytesIO(pdf)).attachments
    assert list(attachments) == ["factur-x.xml"]
    filename, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    assert (filename, xml) == ("factur-x.xml", attachments["factur-x.xml"][0])
    return xml


def _text(tree, path):
    return tree.xpath(f"string({path})", namespaces=NS)


def _cents(tree, path) -> int:
    return int(Decimal(_text(tree, path)) * 100)


def _totals(tree):
    return {name: _cents(tree, SUMMATION + name) for name in (
        "LineTotalAmount", "TaxBasisTotalAmount", "TaxTotalAmount", "GrandTotalAmount",
        "TotalPrepaidAmount", "DuePayableAmount")}


def test_a_reverse_charge_invoice_embeds_a_valid_xml_with_its_totals(now):
    # given
    invoice = reverse_charge_invoice(at=now)
    # when
    xml = _embedded_xml(invoice_pdf(invoice=invoice))
    # then
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    tree = etree.fromstring(xml)
    assert _text(tree, "//rsm:ExchangedDocument/ram:ID") == invoice.number
    assert _text(tree, "//rsm:ExchangedDocument/ram:TypeCode") == "380"
    assert _text(tree, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == (
        "urn:cen.eu:en16931:2017")
    assert _totals(tree) == {
        "LineTotalAmount": invoice.net_cents, "TaxBasisTotalAmount": invoice.net_cents,
        "TaxTotalAmount": invoice.vat_cents, "GrandTotalAmount": invoice.total_cents,
        "TotalPrepaidAmount": invoice.total_cents, "DuePayableAmount": 0}
    assert (invoice.net_cents, invoice.vat_cents, invoice.total_cents) == (8250, 0, 8250)
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:"
    assert (_text(tree, tax + "CategoryCode"), _text(tree, tax + "ExemptionReasonCode"),
            _text(tree, tax + "ExemptionReason"), _cents(tree, tax + "BasisAmount"),
            _cents(tree, tax + "CalculatedAmount")) == (
        "AE", "VATEX-EU-AE", "Autoliquidation — article 196 de la directive 2006/112/CE",
        8250, 0)
    assert _text(tree, "//ram:IncludedSupplyChainTradeLineItem//ram:CategoryCode") == "AE"
    assert _text(tree, "//ram:BuyerTradeParty/ram:Name") == "Beispiel GmbH"
    assert _text(tree, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == (
        "DE136695976")
    assert _text(tree, "//ram:BuyerTradeParty//ram:CountryID") == "DE"
    assert _text(tree, "//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == (
        "FR12123456789")
    assert _text(tree, "//ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID") == (
        "123456789")
    assert _text(tree, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "48"
    assert _text(tree, "//ram:ApplicableTradeSettlementFinancialCard/ram:ID") == "4242"
    assert _text(tree, "//ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString") == (
        "20260307")
    notes = tree.xpath("//ram:IncludedNote/ram:SubjectCode/text()", namespaces=NS)
    assert notes == ["AAB", "PMD", "PMT"]


def test_a_french_business_invoice_is_standard_rated(now):
    # given
    invoice = paid_invoice(french_business(), at=now - days(3))
    # when
    xml = _embedded_xml(invoice_pdf(invoice=invoice))
    # then
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    tree = etree.fromstring(xml)
    assert _totals(tree) == {
        "LineTotalAmount": 8250, "TaxBasisTotalAmount": 8250, "TaxTotalAmount": 1650,
        "GrandTotalAmount": 9900, "TotalPrepaidAmount": 9900, "DuePayableAmount": 0}
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:"
    assert (_text(tree, tax + "CategoryCode"), _text(tree, tax + "RateApplicablePercent"),
            _text(tree, tax + "ExemptionReasonCode")) == ("S", "20.00", "")
    organization = tree.xpath("//ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID",
                              namespaces=NS)[0]
    assert (organization.text, organization.get("schemeID")) == ("73282932000074", "0009")


def test_the_factur_x_pdf_is_a_pdf_a_3_with_one_header(now):
    # given
    invoice = reverse_charge_invoice(at=now)
    # when
    pdf = invoice_pdf(invoice=invoice)
    # then: one document from its first byte (the library's generate_from_binary would
    # prepend a piece of the original: akretion/factur-x#24)
    assert pdf.startswith(b"%PDF-1.") and pdf.count(b"%PDF-") == 1
    reader = PdfReader(BytesIO(pdf))
    metadata = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in metadata
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in metadata
    assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in metadata
    intent = reader.trailer["/Root"]["/OutputIntents"][0].get_object()
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent["/DestOutputProfile"].get_object().get_data()[36:40] == b"acsp"  # ICC
    filespec = reader.trailer["/Root"]["/AF"][0].get_object()
    assert filespec["/AFRelationship"] == "/Data"


def test_a_consumers_pdf_has_no_xml(now):
    # given
    invoice = paid_invoice(consumer(), at=now - days(3))
    # when
    pdf = invoice_pdf(invoice=invoice)
    # then
    assert PdfReader(BytesIO(pdf)).attachments == {}
    assert facturx.get_xml_from_pdf(pdf, check_xsd=False) == (False, False)


def test_a_business_credit_note_is_a_factur_x_credit_note_of_its_invoice(
    now, django_capture_on_commit_callbacks
):
    # given: the reverse-charge invoice refunded in full at cancellation
    invoice = reverse_charge_invoice(at=now)
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=invoice.subscription, now=now)
    credit_note = CreditNote.objects.get(invoice=invoice)
    # when
    xml = _embedded_xml(credit_note_pdf(credit_note=credit_note))
    # then
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    tree = etree.fromstring(xml)
    assert _text(tree, "//rsm:ExchangedDocument/ram:ID") == credit_note.number
    assert _text(tree, "//rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert _text(tree, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == invoice.number
    assert _text(tree, "//ram:InvoiceReferencedDocument//*[local-name()='DateTimeString']") == (
        "20260307")
    # positive in the XML: the type code says it credits
    assert _totals(tree) == {
        "LineTotalAmount": credit_note.net_cents, "TaxBasisTotalAmount": credit_note.net_cents,
        "TaxTotalAmount": credit_note.vat_cents, "GrandTotalAmount": credit_note.total_cents,
        "TotalPrepaidAmount": credit_note.total_cents, "DuePayableAmount": 0}
    assert credit_note.total_cents == 8250


def test_a_consumers_credit_note_pdf_has_no_xml(now, django_capture_on_commit_callbacks):
    # given
    invoice = paid_invoice(consumer(), at=now - days(3))
    with django_capture_on_commit_callbacks(execute=True):
        subscription_cancel(subscription=invoice.subscription, now=now)
    # when
    pdf = credit_note_pdf(credit_note=invoice.credit_notes.get())
    # then
    assert PdfReader(BytesIO(pdf)).attachments == {}


def test_an_unpaid_business_invoice_is_due_on_its_issue_day(now):
    # given: a renewal invoice issued at its period start, its charge declined
    customer = french_business()
    subscription = subscribed(customer=customer, at=now - days(40))
    payment_method_add(customer=customer, now=now,
                       token=card_token("4000000000000341", 12, 2031, "123"))
    invoice = subscription_renew(subscription_id=subscription.pk, now=now).invoice
    invoice.refresh_from_db()
    # when
    xml = _embedded_xml(invoice_pdf(invoice=invoice))
    # then
    assert invoice.status == "open"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    tree = etree.fromstring(xml)
    totals = _totals(tree)
    assert (totals["GrandTotalAmount"], totals["TotalPrepaidAmount"],
            totals["DuePayableAmount"]) == (invoice.total_cents, 0, invoice.total_cents)
    assert _text(tree, "//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString"
                 ) == "20260310"


def test_a_business_outside_the_eu_is_not_subject_to_french_vat(now):
    # given: no VAT outside the EU (DESIGN §3)
    customer = UserFactory(customer_type="business", company_name="Example Inc.",
                           billing_country="US", address_line1="1 Main Street",
                           postal_code="10001", city="New York")
    invoice = paid_invoice(customer, at=now - days(3))
    # when
    xml = _embedded_xml(invoice_pdf(invoice=invoice))
    # then
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    tree = etree.fromstring(xml)
    assert set(tree.xpath("//ram:CategoryCode/text()", namespaces=NS)) == {"O"}
    assert tree.xpath("//ram:RateApplicablePercent", namespaces=NS) == []  # BR-O-05
    assert tree.xpath("//ram:SpecifiedTaxRegistration", namespaces=NS) == []  # BR-O-02
    assert _text(tree, "//ram:ExemptionReasonCode") == "VATEX-EU-O"
    assert _totals(tree)["GrandTotalAmount"] == invoice.total_cents == 8250
