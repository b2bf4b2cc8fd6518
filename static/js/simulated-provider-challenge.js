// The simulated provider's script for 3-D Secure (DESIGN §13): it stands for the provider's
// own (Stripe.js handleNextAction). It sends the cardholder to the provider's challenge page
// with the client secret and the portal's return URL.
(function () {
  "use strict";
  var element = document.getElementById("provider-challenge");
  if (!element) {
    return;
  }
  var url = new URL(element.dataset.challengeUrl, window.location.href);
  url.searchParams.set("client_secret", element.dataset.clientSecret);
  url.searchParams.set("return_url", element.dataset.returnUrl);
  window.location.assign(url.toString());
})();
