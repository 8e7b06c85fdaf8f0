"""The review queue, the labels and the export to data/nlu/reviewed.yml."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from insights.export import REVIEWED_FILE, export_reviewed, nlu_file_examples
from insights.review import (
    NOISE,
    ReviewError,
    UnknownItem,
    allowed_labels,
    before_after,
    dedup_key,
    item_id,
    label_item,
    labels_table,
    predicted_label,
    review_queue,
    reviewed,
)
from tests.insights.conftest import (
    DAY,
    World,
    action,
    session,
    user,
    write_scenario,
)
from tests.test_project import nlu_examples

ROOT = Path(__file__).resolve().parents[2]
THRESHOLD = 0.82
DEV_MESSAGE = nlu_examples(ROOT / "tests" / "nlu_dev" / "dev.yml")[0][1]


async def more_messages(world: World) -> None:
    """The same question written three ways, a phone number, button payloads."""
    d = DAY
    await world.conversation(
        "conv_h",
        [
            *session(f"{d} 15:00:00"),
            user("借唄額度咋整？？", "nlu_fallback", 0.82, f"{d} 15:00:00",
                 ranking=[("nlu_fallback", 0.82), ("jiebei_quota", 0.6)]),
            action("action_clarify_intent", f"{d} 15:00:01"),
            # the button the user clicked: a payload, not words to learn
            user("/jiebei_quota", "jiebei_quota", 1.0, f"{d} 15:00:10"),
        ],
    )  # fmt: skip
    await world.conversation(
        "conv_i",
        [
            *session(f"{d} 16:00:00"),
            user("借呗额度 咋整!", "jiebei_quota", 0.6, f"{d} 16:00:00"),
            user("我手机13812345678借呗没了", "nlu_fallback", 0.82, f"{d} 16:01:00",
                 ranking=[("nlu_fallback", 0.82), ("jiebei_entry_missing", 0.7)]),
            user(DEV_MESSAGE, "nlu_fallback", 0.82, f"{d} 16:02:00",
                 ranking=[("nlu_fallback", 0.82), ("faq", 0.5)],
                 faq=("faq/account_identity", 0.9)),
        ],
    )  # fmt: skip


def by_text(items):
    return {item.text: item for item in items}


async def test_unsure_messages_are_queued_most_frequent_first(world: World) -> None:
    await write_scenario(world)
    items = review_queue(world.stores, THRESHOLD)
    assert [(item.text, item.count, item.reasons) for item in items] == [
        ("有人说能帮我提额要验证码", 1, ["before_handoff"]),
        ("借呗额度咋整", 1, ["fallback", "did_you_mean"]),
        ("没做成", 1, ["before_handoff"]),
        ("借呗入口没了", 1, ["before_handoff"]),
    ]
    quota = by_text(items)["借呗额度咋整"]
    assert (quota.predicted, quota.confidence) == ("jiebei_quota", 0.55)
    assert quota.id == item_id(dedup_key("借呗额度咋整"))
    assert quota.as_dict()["last_seen"] == "2026-11-10T12:00:00+00:00"
    # confident messages (借呗不见了 0.95, 完成了 0.97), the 转人工 itself: not queued
    assert "借呗不见了" not in by_text(items) and "转人工" not in by_text(items)


async def test_the_same_question_written_differently_is_one_item(world: World) -> None:
    await write_scenario(world)
    await more_messages(world)
    items = review_queue(world.stores, THRESHOLD)
    first = items[0]
    assert first.count == 3 and first.conversations == 3
    assert first.text == "借呗额度 咋整!"  # the latest way it was written
    assert first.reasons == ["low_confidence", "fallback", "did_you_mean"]
    assert first.predicted == "jiebei_quota"
    texts = [item.text for item in items]
    assert "/jiebei_quota" not in texts
    assert "我手机138****5678借呗没了" in texts  # masked again (written raw here)
    assert not any("13812345678" in text for text in texts)
    faq = by_text(items)[DEV_MESSAGE]
    assert faq.predicted == "faq/account_identity"
    # a stricter threshold leaves out the 0.6 one
    strict = review_queue(world.stores, 0.5)
    assert strict[0].count == 2
    assert [item.count for item in review_queue(world.stores, THRESHOLD, limit=2)] == [
        3,
        1,
    ]
    with pytest.raises(ReviewError, match="limit"):
        review_queue(world.stores, THRESHOLD, limit=0)
    since = datetime(2026, 11, 10, 14, 30, tzinfo=timezone.utc)
    later = review_queue(world.stores, THRESHOLD, since=since)
    assert sorted(item.text for item in later) == sorted(
        ["借呗额度 咋整!", "我手机138****5678借呗没了", DEV_MESSAGE]
    )
    assert by_text(later)["借呗额度 咋整!"].count == 2


async def test_a_label_is_stored_with_who_and_when_and_leaves_the_queue(
    world: World,
) -> None:
    await write_scenario(world)
    item = by_text(review_queue(world.stores, THRESHOLD))["借呗额度咋整"]
    at = datetime(2026, 11, 11, 9, 0, tzinfo=timezone.utc)
    saved = label_item(
        world.stores, item.id, "jiebei_quota", "agent1", THRESHOLD, now=at
    )
    assert saved == {
        "id": item.id,
        "text": "借呗额度咋整",
        "label": "jiebei_quota",
        "reviewer": "agent1",
        "reviewed_at": "2026-11-11T09:00:00+00:00",
        "predicted": "jiebei_quota",
    }
    assert item.id not in {i.id for i in review_queue(world.stores, THRESHOLD)}
    # relabelled: the new label counts, one row
    label_item(world.stores, item.id, NOISE, "agent2", THRESHOLD)
    rows = reviewed(world.stores)
    assert [(r["label"], r["reviewer"]) for r in rows] == [(NOISE, "agent2")]

    with pytest.raises(ReviewError, match="unknown label"):
        label_item(world.stores, item.id, "no_such_intent", "agent1", THRESHOLD)
    with pytest.raises(ReviewError, match="unknown label"):
        label_item(
            world.stores, item.id, "faq", "agent1", THRESHOLD
        )  # the bare retrieval intent
    with pytest.raises(ReviewError, match="reviewer"):
        label_item(world.stores, item.id, "deny", " ", THRESHOLD)
    with pytest.raises(UnknownItem):
        label_item(world.stores, "0" * 32, "deny", "agent1", THRESHOLD)


def test_the_labels_are_what_users_can_say_and_noise() -> None:
    labels = allowed_labels()
    trained = {label for label, _ in nlu_examples(ROOT / "data" / "nlu")}
    assert set(labels) == trained | {NOISE}
    assert "faq" not in labels and "nlu_fallback" not in labels
    assert "faq/jiebei_repayment" in labels and labels[-1] == NOISE


def test_the_prediction_at_the_time_is_the_classifiers_best_full_label() -> None:
    fallback = {
        "intent": {"name": "nlu_fallback", "confidence": 0.82},
        "intent_ranking": [
            {"name": "nlu_fallback", "confidence": 0.82},
            {"name": "faq", "confidence": 0.7},
        ],
        "response_selector": {
            "faq": {"response": {"intent_response_key": "faq/jiebei_term"}}
        },
    }
    assert predicted_label(fallback) == ("faq/jiebei_term", 0.7)
    assert predicted_label({"intent": {"name": "greet", "confidence": 0.9}}) == (
        "greet",
        0.9,
    )
    assert predicted_label({}) == (None, 0.0)


async def labelled(world: World) -> dict:
    """Labels on scenario messages; returns item ids by text."""
    await write_scenario(world)
    await more_messages(world)
    items = by_text(review_queue(world.stores, THRESHOLD, limit=None))
    plan = {
        "借呗额度 咋整!": "jiebei_quota",
        "没做成": "deny",
        "借呗入口没了": "jiebei_entry_missing",  # already in data/nlu
        "有人说能帮我提额要验证码": "report_scam",
        "我手机138****5678借呗没了": "jiebei_entry_missing",
        DEV_MESSAGE: "faq/account_identity",  # in the development set
    }
    for text, label in plan.items():
        label_item(world.stores, items[text].id, label, "agent1", THRESHOLD)
    return {text: items[text].id for text in plan}


def insert_label(world: World, text: str, label: str) -> None:
    """A row as an older version (or a careless hand) might have left it."""
    reviewed(world.stores)  # the table exists
    engine = sa.create_engine(world.case_url)
    with engine.begin() as connection:
        connection.execute(
            labels_table.insert(),
            {
                "item_id": item_id(dedup_key(text)),
                "normalised": dedup_key(text),
                "text": text,
                "label": label,
                "reviewer": "old",
                "reviewed_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
                "predicted": None,
                "confidence": None,
            },
        )
    engine.dispose()


async def test_export_writes_only_masked_known_new_messages(
    world: World, tmp_path: Path
) -> None:
    ids = await labelled(world)
    label_item(world.stores, ids["没做成"], NOISE, "agent2", THRESHOLD)
    insert_label(world, "联系我 13912345678 借呗怎么没了", "jiebei_entry_missing")
    insert_label(world, "借呗咋变样了呀", "jiebei_renamed_long_ago")
    out = tmp_path / "reviewed.yml"
    report = export_reviewed(world.stores, path=out)

    written = nlu_file_examples(out)
    assert sorted(written) == [
        ("jiebei_entry_missing", "我手机138****5678借呗没了"),
        ("jiebei_entry_missing", "联系我 139****5678 借呗怎么没了"),
        ("jiebei_quota", "借呗额度 咋整!"),
        ("report_scam", "有人说能帮我提额要验证码"),
    ]
    assert report.as_dict()["refused"] == {
        "noise": 1,
        "unknown_label": 1,
        "in_training_data": 1,
        "evaluation_set": 1,
    }
    content = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert content["version"] == "3.1"
    assert [block["intent"] for block in content["nlu"]] == [
        "jiebei_entry_missing",
        "jiebei_quota",
        "report_scam",
    ]
    assert "1391234" not in out.read_text(encoding="utf-8")


async def test_rasa_reads_the_export(world: World, tmp_path: Path) -> None:
    from rasa.shared.nlu.training_data.loading import load_data

    await labelled(world)
    out = tmp_path / "reviewed.yml"
    export_reviewed(world.stores, path=out)
    data = load_data(str(out))
    assert {(m.get("intent"), m.get("text")) for m in data.intent_examples} >= {
        ("jiebei_quota", "借呗额度 咋整!"),
        ("report_scam", "有人说能帮我提额要验证码"),
    }


async def test_export_keeps_what_the_file_held_and_writes_nothing_when_empty(
    world: World, tmp_path: Path
) -> None:
    out = tmp_path / "reviewed.yml"
    report = export_reviewed(world.stores, path=out)  # nothing reviewed, no file
    assert report.total == 0 and not out.exists()

    out.write_text(
        'version: "3.1"\nnlu:\n- intent: deny\n  examples: |\n    - 不是这个意思啦\n',
        encoding="utf-8",
    )
    await labelled(world)
    export_reviewed(world.stores, path=out)
    assert ("deny", "不是这个意思啦") in nlu_file_examples(out)  # kept
    assert ("jiebei_quota", "借呗额度 咋整!") in nlu_file_examples(out)
    again = export_reviewed(world.stores, path=out)  # the same result again
    assert again.total == len(nlu_file_examples(out))


async def test_one_message_under_two_labels_is_not_exported(
    world: World, tmp_path: Path
) -> None:
    # two raw texts that masking makes one
    insert_label(world, "我的号13812345678额度没了", "jiebei_quota")
    insert_label(world, "我的号13800005678额度没了", "jiebei_cannot_borrow")
    report = export_reviewed(world.stores, path=tmp_path / "reviewed.yml")
    assert report.total == 0 and report.as_dict()["refused"] == {"two_labels": 2}


def test_export_refuses_to_run_outside_the_repository(tmp_path: Path) -> None:
    from insights.stores import Stores

    stores = Stores.from_urls(
        f"sqlite:///{tmp_path / 't.db'}", f"sqlite:///{tmp_path / 'c.db'}"
    )
    with pytest.raises(ReviewError, match="evaluation sets"):
        export_reviewed(stores, root=tmp_path)


async def test_before_and_after(world: World) -> None:
    await labelled(world)
    truth = {row["text"]: row["label"] for row in reviewed(world.stores)}
    result = before_after(world.stores, lambda text: truth[text])
    assert result["scored"] == 6 and result["after"]["accuracy"] == 1.0
    # at the time: 借呗额度 right (jiebei_quota), 没做成 right (deny), 借呗入口没了
    # right, the scam report right, the phone message right, the FAQ right
    assert result["before"]["correct"] == 6
    wrong = before_after(world.stores, lambda text: "greet")
    assert wrong["after"] == {"correct": 0, "accuracy": 0.0}


def test_the_reviewed_file_is_the_one_make_train_reads() -> None:
    assert REVIEWED_FILE.as_posix() == "data/nlu/reviewed.yml"
