"""The Rasa side's cost per user turn of a model, in one process: what a policy costs.

`make bench` measures latency over HTTP, which a busy machine blurs. This
loads each model given in-process (Rasa's Agent, in-memory tracker), talks to
a real action server (its own process: not counted) and walks the same
diagnosis conversations as the bench (an identified account with one cause,
one with several, an anonymous user answering every question), one message at
a time. Per turn it reports the CPU time of this process (NLU, policies,
tracker handling, the HTTP client of the action calls), the action server's
CPU time, and the wall time; CPU time is what another process on the machine
does not change. Two models that differ only in their policies (config.yml
with and without TEDPolicy) give the cost of the policy they differ by. The
action endpoint is read from ``--endpoints`` as Rasa reads it.

    python -m scripts.bench_dialogue --model models/jiebei.tar.gz [--model other.tar.gz]
        [--conversations 30] [--endpoints endpoints.yml]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

import psutil  # type: ignore[import-untyped]

from actions.services.accounts import load_fixtures
from bot_server.rasa_patches import install as install_rasa_patches
from devtools.harness import base_env, seed_accounts, start_actions, stop
from devtools.servers import free_port
from scripts.bench_support import next_answer, question_texts, seed_bench_accounts

OPENING = "我的支付宝里找不到借呗了"
FIXTURES = ("demo_account_frozen", "demo_multi_credit")
MAX_TURNS = 12
WARM_UP = 3


async def walk(agent: Any, sender: str, questions: Dict[str, str]) -> List[float]:
    """One conversation; the (cpu ms, wall ms) of each turn, flattened in pairs."""
    costs: List[float] = []
    text = OPENING
    for _ in range(MAX_TURNS):
        cpu, wall = time.process_time(), time.perf_counter()
        replies = await agent.handle_text(text, sender_id=sender)
        costs += [
            (time.process_time() - cpu) * 1000,
            (time.perf_counter() - wall) * 1000,
        ]
        following = next_answer(replies or [], questions)
        if following is None:
            break
        text = following
    return costs


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def measure(
    model: Path, endpoints_file: Path, actions_pid: int, senders: List[str]
) -> Dict[str, Any]:
    """Load `model` and walk every sender's conversation; per-turn figures."""
    from rasa.core.agent import load_agent
    from rasa.core.utils import AvailableEndpoints
    from rasa.utils.endpoints import read_endpoint_config

    # What the Rasa server runs with: our plug-ins install these when Rasa
    # loads them (bot_server/rasa_patches), a bare Agent does not.
    install_rasa_patches()
    action = read_endpoint_config(str(endpoints_file), "action_endpoint")
    agent = await load_agent(
        model_path=str(model), endpoints=AvailableEndpoints(action=action)
    )
    questions = question_texts()
    for sender in senders[:WARM_UP]:
        await walk(agent, f"warm_{sender}", questions)
    costs: List[float] = []
    actions_before = cpu_s(actions_pid)
    for sender in senders:
        costs += await walk(agent, sender, questions)
    actions_ms = (cpu_s(actions_pid) - actions_before) * 1000
    cpu, wall = costs[0::2], costs[1::2]
    return {
        "model": str(model),
        "turns": len(cpu),
        "cpu_ms_mean": round(statistics.mean(cpu), 1),
        "cpu_ms_median": round(statistics.median(cpu), 1),
        "action_server_cpu_ms_mean": round(actions_ms / len(cpu), 1),
        "wall_ms_mean": round(statistics.mean(wall), 1),
        "wall_ms_median": round(statistics.median(wall), 1),
    }


def senders_for(ids: Sequence[str], conversations: int) -> List[str]:
    """Fixture copies (one per conversation) and anonymous users, in turn."""
    picked = [i for i in ids if any(i.endswith(f"_{f}") for f in FIXTURES)]
    return [picked[n] if n % 3 else f"bench_visitor_{n}" for n in range(conversations)]


def main(argv: Sequence[str]) -> int:
    """Start an action server, measure each model in turn, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=Path, required=True)
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--endpoints", type=Path, default=Path("endpoints.yml"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="jiebei-bench-dialogue-") as folder:
        port = free_port()
        env = base_env(Path(folder), port)
        seed_accounts(env)
        # Every fixture once per conversation: enough fresh copies of each.
        copies = args.conversations * len(load_fixtures())
        ids = seed_bench_accounts(env["ACCOUNT_DB_URL"], copies)
        actions = start_actions(env, port, Path(folder) / "actions.log")
        # The endpoints file names the action server (and the rest) from these.
        os.environ.update(env)
        try:
            for model in args.model:
                row = asyncio.run(
                    measure(
                        model,
                        args.endpoints,
                        actions.pid,
                        senders_for(ids, args.conversations),
                    )
                )
                print(row, flush=True)
        finally:
            stop(actions)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
