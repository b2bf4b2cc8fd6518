// Stripe Elements card fields (DESIGN §13): the number never leaves Stripe's iframe; on submit
// Stripe.js creates a PaymentMethod and only its id (pm_…) is posted to the portal.
(function () {
  "use strict";
  document.querySelectorAll("[data-stripe-card-fields]").forEach((fieldset) => {
    if (typeof Stripe !== "function") return;  // Stripe.js unreachable: the notice stays
    const form = fieldset.closest("form");
    const error = fieldset.querySelector("[data-card-error]");
    const tokenInput = form.querySelector("input[name=card_token]");
    const savedCard = form.querySelector("input[name=use_saved_card]");
    const stripe = Stripe(fieldset.dataset.publishableKey);
    const card = stripe.elements({locale: document.documentElement.lang || "fr"}).create("card");
    card.mount(fieldset.querySelector("[data-stripe-card-element]"));
    fieldset.querySelector("[data-card-needs-script]").hidden = true;

    form.addEventListener("submit", async (event) => {
      if (tokenInput.value || (savedCard && savedCard.checked)) return;
      event.preventDefault();
      let result;
      try {
        result = await stripe.createPaymentMethod({type: "card", card});
      } catch (failure) {
        result = {error: {message: fieldset.dataset.unreachable}};
      }
      if (result.error) {
        error.textContent = result.error.message;
        error.hidden = false;
        return;
      }
      tokenInput.value = result.paymentMethod.id;
      form.submit();
    });
  });
})();
