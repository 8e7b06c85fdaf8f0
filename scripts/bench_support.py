"""Pieces of `scripts/bench_e2e.py` that are not about measuring.

The bare reference project (written, trained and started here), the bench
accounts (fixture copies, one per simulated conversation), the walk through a
conversation from the REST replies alone, and the memory and CPU time of a
server (with its workers).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import psutil  # type: ignore[import-untyped]
import yaml

from actions.services.accounts import SqlAccountStore, load_fixtures
from devtools.harness import RASA, wait_until_up
from devtools.project import ROOT, load_domain
from devtools.scenarios import (
    ANSWERS,
    OPENING,
    RATING_QUESTION,
    STEP_QUESTIONS,
    answer_to,
)

# What the simulated user says to the step questions and to the rating
# question (as devtools.scenarios.walk does).
STEP_ANSWER = answer_to(STEP_QUESTIONS[0]) or ""
RATING_ANSWER = answer_to(RATING_QUESTION) or ""
# The reply guard's apology (utter_service_trouble): the bot answered but
# could not do its job, so the bench counts it as an error.
APOLOGY_MARK = "系统暂时出了点问题"


# --- the walk through a conversation, from the REST replies -----------------


def question_texts() -> Dict[str, str]:
    """Text of every question the walk answers → the answer to give."""
    answers = {
        **ANSWERS,
        **dict.fromkeys(STEP_QUESTIONS, STEP_ANSWER),
        RATING_QUESTION: RATING_ANSWER,
    }
    responses = load_domain()["responses"]
    texts: Dict[str, str] = {}
    for name, answer in answers.items():
        for variation in responses[name]:
            texts[str(variation["text"])] = answer
    return texts


def next_answer(
    replies: Sequence[Mapping[str, Any]], questions: Mapping[str, str]
) -> Optional[str]:
    """What the user says next: the answer to the bot's last question, or None."""
    texts = [str(reply["text"]) for reply in replies if reply.get("text")]
    return questions.get(texts[-1]) if texts else None


def is_apology(replies: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the reply guard apologised instead of the bot doing its job."""
    return any(APOLOGY_MARK in str(reply.get("text", "")) for reply in replies)


# --- bench accounts ----------------------------------------------------------


def seed_bench_accounts(account_db_url: str, conversations: int) -> List[str]:
    """Copy the fixture accounts as ``bench_<n>_<fixture id>``: one per conversation.

    The store must exist (seeded by harness.seed_accounts). Returns the ids in
    the order conversations use them: every fixture once, then again.
    """
    fixtures = load_fixtures()
    copies = -(-conversations // len(fixtures))
    records = [
        (f"bench_{copy}_{fixture_id}", facts)
        for copy in range(copies)
        for fixture_id, facts in fixtures.items()
    ]
    SqlAccountStore(account_db_url).put_many(records)
    return [account_id for account_id, _ in records]


# --- resident memory ----------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Memory and CPU time of a server: its process, then its workers.

    Sanic forks the workers from the main process. A worker's RSS includes
    the pages it still shares with the main process (what the main process
    imported before forking), so the RSS of all
    processes added up counts those pages once per process. The footprint
    counts them once: the main process's RSS plus each worker's private
    memory (USS). (PSS would divide shared pages among every process on the
    machine that maps the same libraries, other Rasa servers included.)
    """

    rss_mb: List[float]
    private_mb: List[float]
    # User and system CPU seconds of each process since it started.
    process_cpu_s: List[float]

    @property
    def cpu_s(self) -> float:
        """CPU seconds of all its processes."""
        return round(sum(self.process_cpu_s), 2)

    @property
    def total_rss_mb(self) -> float:
        """The RSS of all processes added up (shared pages counted each time)."""
        return round(sum(self.rss_mb), 1)

    @property
    def footprint_mb(self) -> float:
        """The main process's RSS plus the workers' private memory."""
        return round(self.rss_mb[0] + sum(self.private_mb[1:]), 1)


def usage_of(pid: int) -> Usage:
    """RSS, private memory and CPU time of a server and its child processes."""
    process = psutil.Process(pid)
    rss: List[float] = []
    private: List[float] = []
    cpu_s: List[float] = []
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        rss.append(round(info.rss / 1e6, 1))
        private.append(round(info.uss / 1e6, 1))
        cpu_s.append(round(times.user + times.system, 2))
    return Usage(rss, private, cpu_s)


# --- the bare reference project ----------------------------------------------

# A few intents answered by one static response each, plus a small retrieval
# intent so that the ResponseSelector of our pipeline has work as in ours.
BARE_EXAMPLES: Dict[str, List[str]] = {
    "greet": ["你好", "您好", "在吗", "hi", "哈喽", "早上好", "你好呀", "在不在",
              "有人吗", "晚上好"],
    "goodbye": ["拜拜", "再见", "先这样吧", "我走了", "回头见", "下次再聊", "bye",
                "好的再见", "不聊了", "晚安"],
    "affirm": ["是的", "对", "好的", "嗯", "可以", "行", "没问题", "完成了", "好",
               "对的"],
    "deny": ["不是", "不对", "没有", "不行", "没做成", "不要", "算了", "不用了",
             "还没有", "做不到"],
    "thank": ["谢谢", "多谢", "谢谢你", "感谢", "太感谢了", "谢啦", "辛苦了",
              "谢谢帮忙", "非常感谢", "3q"],
    "complain": ["我的支付宝里找不到借呗了", "借呗入口没了", "借呗不见了",
                 "借呗咋没了", "支付宝里没有借呗了", "怎么找不到借呗",
                 "借呗消失了", "借呗入口不见了", "我的借呗没了", "找不到借呗"],
    "rate": ["5", "5分", "打5分", "给你五分", "4分", "三分吧", "1分", "满分",
             "两分", "打个4分"],
    "inform": ["正常", "还没实名", "绑了一张", "六百多", "没有逾期", "没申请过",
               "实名了", "七百", "绑了两张", "被冻结了"],
    "faq/repay": ["借呗怎么还款", "借呗怎么还钱", "借呗在哪还", "借呗还款方式",
                  "怎么还借呗", "借呗能自动还款吗", "借呗还款日是哪天",
                  "借呗怎么主动还", "借呗到期怎么还", "还借呗的入口在哪"],
    "faq/quota": ["借呗额度是多少", "借呗额度怎么提升", "借呗额度太低了",
                  "怎么提高借呗额度", "借呗能借多少", "借呗额度为什么降了",
                  "借呗额度怎么看", "借呗额度没了", "借呗最高额度多少",
                  "借呗额度会变吗"],
}  # fmt: skip

BARE_RESPONSES: Dict[str, str] = {
    "utter_greet": "您好，有什么可以帮您？",
    "utter_goodbye": "再见。",
    "utter_affirm": "好的。",
    "utter_deny": "好的，明白了。",
    "utter_thank": "不客气。",
    "utter_complain": "借呗入口一般在支付宝首页搜索「借呗」。",
    "utter_rate": "谢谢您的评分。",
    "utter_inform": "收到。",
    "utter_faq/repay": "借呗到期会自动从余额或银行卡扣款，也可以主动还款。",
    "utter_faq/quota": "借呗额度由系统综合评估，保持良好信用有助于提升。",
    "utter_default": "不好意思，我没听明白。",
}

# What `rasa init` writes: no pipeline and no policies, so Rasa fills in its
# defaults (DIET, ResponseSelector, TED, UnexpecTED). `en`: Rasa's default
# tokenizer refuses `zh`. The reference a newcomer means by "a bare Rasa bot".
RASA_DEFAULT_CONFIG = "recipe: default.v1\nlanguage: en\npipeline:\npolicies:\n"

CREDENTIALS = "rest:\n"
# Explicit, or `rasa run` would read the repository's endpoints.yml (cwd).
ENDPOINTS = "tracker_store:\n  type: in_memory\nlock_store:\n  type: in_memory\n"


@dataclass(frozen=True)
class BareModel:
    """The trained bare project."""

    model: Path
    credentials: Path
    endpoints: Path
    train_s: float


def _intent_names() -> List[str]:
    return sorted({name.split("/")[0] for name in BARE_EXAMPLES})


def bare_domain() -> Dict[str, Any]:
    """Intents, one static response each; no slots, no custom actions."""
    return {
        "version": "3.1",
        "intents": _intent_names(),
        "responses": {name: [{"text": text}] for name, text in BARE_RESPONSES.items()},
    }


def bare_data() -> Dict[str, Any]:
    """NLU examples, a rule intent → response, and two stories."""
    rules = [
        {
            "rule": f"answer {intent}",
            "steps": [{"intent": intent}, {"action": f"utter_{intent}"}],
        }
        for intent in _intent_names()
    ]
    rules.append(
        {
            "rule": "fallback",
            "steps": [{"intent": "nlu_fallback"}, {"action": "utter_default"}],
        }
    )
    stories = [
        {
            "story": "complain then thank",
            "steps": [{"intent": "complain"}, {"action": "utter_complain"},
                      {"intent": "thank"}, {"action": "utter_thank"}],
        },
        {
            "story": "greet, ask, rate",
            "steps": [{"intent": "greet"}, {"action": "utter_greet"},
                      {"intent": "faq"}, {"action": "utter_faq"},
                      {"intent": "rate"}, {"action": "utter_rate"}],
        },
    ]  # fmt: skip
    nlu = [
        {"intent": intent, "examples": "".join(f"- {text}\n" for text in examples)}
        for intent, examples in BARE_EXAMPLES.items()
    ]
    return {"version": "3.1", "nlu": nlu, "rules": rules, "stories": stories}


def write_bare_project(folder: Path) -> None:
    """domain.yml, data/bare.yml, credentials.yml (plain ``rest:``), endpoints.yml."""
    (folder / "data").mkdir(parents=True, exist_ok=True)

    def dump(path: Path, content: Mapping[str, Any]) -> None:
        path.write_text(
            yaml.safe_dump(dict(content), allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )

    dump(folder / "domain.yml", bare_domain())
    dump(folder / "data" / "bare.yml", bare_data())
    (folder / "credentials.yml").write_text(CREDENTIALS, encoding="utf-8")
    (folder / "endpoints.yml").write_text(ENDPOINTS, encoding="utf-8")


def bare_env() -> Dict[str, str]:
    """Environment of the bare project's rasa processes."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def train_bare(folder: Path, log: Path, rasa_default: bool = False) -> BareModel:
    """Write and train the bare project with our config.yml; times the training.

    ``rasa_default``: with Rasa's default configuration instead (as `rasa init`).

    Runs in the repository (config.yml names build/spacy_zh and nlu/ by
    relative path) with a training cache of its own, so nothing is reused from
    an earlier training and the time is a full one.
    """
    write_bare_project(folder)
    config = "config.yml"
    if rasa_default:
        config = str(folder / "config.yml")
        Path(config).write_text(RASA_DEFAULT_CONFIG, encoding="utf-8")
    env = {**bare_env(), "RASA_CACHE_DIRECTORY": str(folder / "cache")}
    started = time.monotonic()
    with log.open("ab") as handle:
        subprocess.run(
            [str(RASA), "train", "--config", config,
             "--domain", str(folder / "domain.yml"), "--data", str(folder / "data"),
             "--out", str(folder / "models"), "--fixed-model-name", "bare"],
            cwd=ROOT, env=env, check=True, stdout=handle, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return BareModel(
        model=folder / "models" / "bare.tar.gz",
        credentials=folder / "credentials.yml",
        endpoints=folder / "endpoints.yml",
        train_s=round(time.monotonic() - started, 1),
    )


def start_bare_rasa(
    bare: BareModel, port: int, log: Path, extra_env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """A Rasa server with the bare model: in-memory tracker, plain REST channel.

    ``extra_env`` is added to its environment.

    (harness.start_rasa always loads our model with our credentials.)
    """
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [str(RASA), "run", "--enable-api", "-i", "127.0.0.1", "-p", str(port),
             "--model", str(bare.model), "--credentials", str(bare.credentials),
             "--endpoints", str(bare.endpoints)],
            cwd=ROOT, env={**bare_env(), **extra_env}, stdout=handle,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_until_up(f"http://127.0.0.1:{port}/status", process, log)
    return process


def default_script() -> List[str]:
    """The texts of a typical conversation, when none was recorded in this run."""
    return [OPENING, STEP_ANSWER, STEP_ANSWER, RATING_ANSWER]
