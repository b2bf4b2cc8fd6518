// Stripe.js runs the 3-D Secure challenge of the PaymentIntent (DESIGN §6), then the customer
// returns to the portal, which asks Stripe what happened; nothing is decided in the browser.
(function () {
  "use strict";
  const element = document.getElementById("stripe-challenge");
  if (!element || typeof Stripe !== "function") return;
  element.querySelector("[data-card-needs-script]").hidden = true;
  Stripe(element.dataset.publishableKey)
    .handleNextAction({clientSecret: element.dataset.clientSecret})
    .finally(() => window.location.assign(element.dataset.returnUrl));
})();
