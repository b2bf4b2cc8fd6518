"""localstripe, the Stripe-compatible server of the Stripe adapter's contract tests, run as
``python localstripe_server.py --port N`` with three changes to its own ``localstripe``
command:

- it listens on 127.0.0.1 only (the command listens on every interface);
- its store stays in memory (the command pickles it to /tmp/localstripe.pickle after every
  write, a file every localstripe on the machine shares);
- it honours ``Idempotency-Key``, which localstripe ignores, as Stripe documents it: a POST
  sent again under a key gets the first answer again, whatever it was (an error too), with
  ``Idempotent-Replayed: true``; the same key with other parameters gets a 400
  ``idempotency_error``.
"""

import argparse

from aiohttp import web
from localstripe import resources
from localstripe.server import app

resources.Store.dump_to_disk = lambda self: None

_answers = {}  # idempotency key -> (path, body, status, text)


@web.middleware
async def idempotency(request, handler):
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    body = await request.read()
    if key in _answers:
        path, sent, status, text = _answers[key]
        if (path, sent) != (request.path, body):
            return web.json_response({"error": {
                "type": "idempotency_error",
                "message": "Keys for idempotent requests can only be used with the same "
                           "parameters they were first used with.",
            }}, status=400)
        return web.Response(status=status, text=text, content_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
    response = await handler(request)
    _answers[key] = (request.path, body, response.status, response.text)
    return response


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    app.middlewares.insert(0, idempotency)  # outermost: it also keeps the errors' answers
    web.run_app(app, host="127.0.0.1", port=parser.parse_args().port, print=None,
                access_log=None)
