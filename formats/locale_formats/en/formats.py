"""English formats for what Django localizes on its own (admin columns and read-only fields,
an unfiltered ``{{ value }}``): full month names as formats.dates writes them ("June 1, 2027",
"June 1, 2027, 3:00 PM"), not Django's "Jun. 1, 2027, 3 p.m.". French keeps Django's formats,
which never abbreviate a month ("1 juin 2027 15:00", "01/06/2027")."""

DATE_FORMAT = "F j, Y"
TIME_FORMAT = "g:i A"
DATETIME_FORMAT = "F j, Y, g:i A"
SHORT_DATETIME_FORMAT = "m/d/Y g:i A"
