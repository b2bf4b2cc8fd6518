"""Staff exports of the invoices (DESIGN §14): the e-reporting of consumer sales per day and
VAT rate (``ereporting``) and the accountant's list of invoices and credit notes
(``accounting``). Reads only; the admin and the ``ereporting`` command call them."""
