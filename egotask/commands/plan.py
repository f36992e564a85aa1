"""`egotask plan`: the plan of an `lmms_eval` run, from the same arguments (``lmms_eval ... --plan``)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan", usage="egotask plan [-h] LMMS_EVAL_ARGS ...",
        help="what an lmms_eval run would do and cost, before it runs (runs and writes nothing)",
        description="Take the arguments of an `lmms_eval` run (--tasks, --model, --model_args, --limit, "
                    "--gen_kwargs, --judge, --judge-mode, --protocol, ...) and print, without running or writing "
                    "anything: the items per task, the answers and verdicts the caches already hold, the "
                    "visible-interval cuts and the frames still to make, the judge requests still to send, the "
                    "estimated tokens and cost (synchronous and batch, from egotask/judges/prices.json and the "
                    "date its prices were checked) and the judging time (--plan-latency S, or "
                    "EGOTASK_PLAN_LATENCY). The same as `lmms_eval ARGS --plan`; --plan=json prints JSON. "
                    "Exit status 0, or 2 for a usage error.",
        epilog="example: egotask plan --tasks egotextvqa_indoor --model qwen3vl "
               "--model_args pretrained=Qwen/Qwen3-VL-2B-Instruct --judge gemini --plan-latency 2")
    # Every argument goes to lmms_eval's parser as given (egotask's cli passes on the ones it does not know).
    p.set_defaults(func=run, pass_through=True, lmms_eval_args=[])


def run(args: argparse.Namespace) -> int:
    from egotask.lmms_entry import main

    rest = list(args.lmms_eval_args)
    if not any(a == "--plan" or a.startswith("--plan=") for a in rest):
        rest.append("--plan")
    return main(rest)
