#!/usr/bin/env python3
"""Writes N chat-log lines (default 1,000,000) for `tollgate audit`,
deterministic for a seed: 60 workflows (templated system prompts with
variable tickets, ids and dates), 300 owners, five models, 30 days, with
retries, duplicates, lines without usage and a few malformed lines.

usage: gen.py [N] > lines.jsonl
"""
import json
import random
import sys

T0 = 1793491200  # 2026-11-01T00:00:00Z
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gpt-4.1",
          "claude-haiku-4-5"]
TASKS = ["Classify the support ticket into hardware, software or billing.",
         "Summarise the contract clause for a non-lawyer in two sentences.",
         "Extract the invoice number, total and due date as JSON.",
         "Translate the customer message to English.",
         "Write a polite reply to the customer."]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    rnd = random.Random(8)
    out = sys.stdout
    systems = ["%s Team %d. Answer briefly." % (TASKS[i % 5], i)
               for i in range(60)]
    prev = None
    for i in range(n):
        if i % 997 == 0:
            out.write('{"timestamp": %d, "request": {"model": \n' % T0)
            continue
        if prev is not None and i % 211 == 0:
            line = dict(prev)
            line["timestamp"] = prev["timestamp"] + rnd.randint(1, 30)
            out.write(json.dumps(line) + "\n")
            continue
        w = rnd.randrange(60)
        model = MODELS[w % 5]
        ts = T0 + (i * 2592000) // n
        user = "Ticket #%d from user%d@example.com on 2026-11-%02d: %s" % (
            rnd.randrange(100000), rnd.randrange(5000), 1 + ts % 28,
            "the app crashes when I upload a file " * rnd.randint(1, 4))
        pin = 60 + len(user) // 4 + rnd.randrange(40)
        pout = 3 if w % 5 == 0 else rnd.randint(20, 400)
        resp = {"object": "chat.completion", "model": model, "created": ts,
                "choices": [{"index": 0, "message": {
                    "role": "assistant", "content": "software"}}]}
        if i % 101 != 0:
            resp["usage"] = {"prompt_tokens": pin, "completion_tokens": pout,
                             "total_tokens": pin + pout}
        line = {"timestamp": ts, "owner": "owner-%d" % rnd.randrange(300),
                "key": "key-%d" % (w % 40),
                "request": {"model": model, "messages": [
                    {"role": "system", "content": systems[w]},
                    {"role": "user", "content": user}]},
                "response": resp}
        prev = line
        out.write(json.dumps(line) + "\n")


main()
