#!/usr/bin/python3
"""A third-party XMPP client for slixmpp_test.go: slixmpp (Debian's
python3-slixmpp) connects to the box with STARTTLS, trusting only the
box's CA, logs in with the SASL mechanism it prefers (SCRAM with channel
binding), sends one chat message, waits for the answer from the same
contact, prints "mechanism: <SASL mechanism>" and "reply: <body>" and
exits 0. Anything else (no connection, a certificate that does not
verify, a failed login, no answer within --timeout seconds) exits 1 with
the reason on stderr.

With --room it joins that room (XEP-0045) as --nick instead, says --body
there and waits for a line from another occupant.

--max-tls 1.2 holds TLS to 1.2: slixmpp 1.8 binds SCRAM-PLUS to
tls-unique only, which TLS 1.3 does not have (RFC 9266); over TLS 1.3 it
uses SCRAM with the "y" flag, which the box accepts there.
"""

import argparse
import asyncio
import logging
import ssl
import sys
from pathlib import Path

import slixmpp


async def run(args) -> str:
    xmpp = slixmpp.ClientXMPP(args.jid, args.password)
    xmpp.ca_certs = Path(args.ca)  # the box's CA, hostname checked as usual
    if args.max_tls == "1.2":
        xmpp.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.room:
        xmpp.register_plugin("xep_0045")
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def fail(why):
        if not done.done():
            done.set_exception(RuntimeError(why))

    async def session_start(_event):
        xmpp.send_presence()
        if args.room:
            await xmpp.plugin["xep_0045"].join_muc_wait(args.room, args.nick, maxstanzas=0, timeout=args.timeout)
            xmpp.send_message(mto=args.room, mbody=args.body, mtype="groupchat")
            return
        xmpp.send_message(mto=args.to, mbody=args.body, mtype="chat")

    def message(msg):
        if msg["type"] in ("chat", "normal") and msg["from"].bare == args.to and msg["body"]:
            if not done.done():
                done.set_result(msg["body"])

    def groupchat(msg):
        if args.room and msg["from"].bare == args.room and msg["from"].resource != args.nick and msg["body"]:
            if not done.done():
                done.set_result("%s: %s" % (msg["from"].resource, msg["body"]))

    def auth_success(_event):
        print("mechanism: %s" % xmpp["feature_mechanisms"].mech.name, flush=True)

    xmpp.add_event_handler("auth_success", auth_success)
    xmpp.add_event_handler("session_start", session_start)
    xmpp.add_event_handler("message", message)
    xmpp.add_event_handler("groupchat_message", groupchat)
    xmpp.add_event_handler("failed_all_auth", lambda _e: fail("login failed"))
    xmpp.add_event_handler("connection_failed", lambda e: fail("cannot connect: %s" % e))
    xmpp.add_event_handler("disconnected", lambda e: fail("disconnected: %s" % e))
    xmpp.connect(address=(args.host, args.port), force_starttls=True)
    try:
        return await asyncio.wait_for(done, args.timeout)
    except asyncio.TimeoutError:
        raise RuntimeError("no answer from %s within %ss" % (args.room or args.to, args.timeout))
    finally:
        xmpp.disconnect()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True, help="PEM file of the CA to trust")
    p.add_argument("--to", default="")
    p.add_argument("--room", default="")
    p.add_argument("--nick", default="slix")
    p.add_argument("--max-tls", default="1.3", choices=["1.2", "1.3"])
    p.add_argument("--body", required=True)
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--debug", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        reply = asyncio.run(run(args))
    except Exception as e:  # any failure is the test's failure
        print("slixmpp_client: %s" % e, file=sys.stderr)
        return 1
    print("reply: %s" % reply, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
