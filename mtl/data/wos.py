"""WoS (dialogue state tracking) reader: dialogues with the cumulative state after each user turn.

The official file (a JSON list) and the hub rows share one shape:
``{guid, domains, dialogue: [{role: "user"|"sys", text, state?}]}``. Official system turns have no
``state``; the hub gives them ``state: []``: both become None. A system turn with a non-empty state is
an error. Each state item must split with ``split("-", 2)`` into three non-empty parts
(domain, slot, value; slot names hold spaces, values may hold "-"); a bad item is an error naming the
guid and the turn index. With ``labeled=True`` every user turn needs a ``state`` list (it may be
empty); with ``labeled=False`` user states are not read and are None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.records import WosRecord, WosTurn
from mtl.errors import KlueInputError

ROLES = ("user", "sys")


def read(path: str | Path, *, labeled: bool = True, split: str = "dev") -> list[WosRecord]:
    """Read WoS dialogues from an official file, a hub export or a ``hub:`` spec."""
    return common.read_task(
        path,
        task="wos",
        official_json=_from_official,
        from_hub_rows=from_hub_rows,
        labeled=labeled,
        split=split,
    )


def from_hub_rows(
    rows: Iterable[Mapping[str, Any]], *, source: str, labeled: bool = True, split: str = "dev"
) -> list[WosRecord]:
    """Turn hub-schema rows (one per dialogue) into records; ``source`` names the input in errors."""
    return _records(common.as_row_list(rows), source, labeled)


def _from_official(data: Any, path: Path, labeled: bool) -> list[WosRecord]:
    return _records(data, path, labeled)


def _state(turn: Mapping[str, Any], t: int, path: str | Path, where: str) -> list[str]:
    if turn.get("state") is None:
        raise KlueInputError(path, where, f"user turn {t} has no 'state'")
    state = common.get_str_list(turn, "state", path, where)
    for item in state:
        parts = item.split("-", 2)
        if len(parts) != 3 or not all(parts):
            raise KlueInputError(path, where, f"turn {t}: state item {item!r} is not 'domain-slot-value'")
    return list(state)


def _turn(obj: Any, t: int, path: str | Path, where: str, labeled: bool) -> WosTurn:
    turn = common.as_mapping(obj, path, where, f"dialogue[{t}]")
    role = common.get_str(turn, "role", path, where)
    if role not in ROLES:
        raise KlueInputError(path, where, f"turn {t}: role {role!r} is not 'user' or 'sys'")
    text = common.get_str(turn, "text", path, where)
    if role == "sys":
        if turn.get("state"):
            raise KlueInputError(path, where, f"turn {t}: a system turn carries a non-empty state")
        return WosTurn(role=role, text=text, state=None)
    return WosTurn(role=role, text=text, state=_state(turn, t, path, where) if labeled else None)


def _records(items: list[Any], path: str | Path, labeled: bool) -> list[WosRecord]:
    guids = common.GuidSet(path)
    out: list[WosRecord] = []
    for i, obj in enumerate(items):
        where = common.locate(obj, i, path)
        guid = common.get_str(obj, "guid", path, where)
        guids.add(guid, f"#{i}")
        dialogue = common.get_list(obj, "dialogue", path, where)
        if not dialogue:
            raise KlueInputError(path, where, "dialogue is empty")
        out.append(
            WosRecord(
                guid=guid,
                domains=list(common.get_str_list(obj, "domains", path, where)),
                dialogue=[_turn(turn, t, path, where, labeled) for t, turn in enumerate(dialogue)],
            )
        )
    return common.require_records(out, path)
