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

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mtl.data import common
from mtl.data.records import WosRecord, WosTurn
from mtl.errors import KlueInputError

ROLES = ("user", "sys")


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


def _record(obj: Mapping[str, Any], guid: str, item: common.Item) -> WosRecord:
    path, where = item.path, item.where
    dialogue = common.get_list(obj, "dialogue", path, where)
    if not dialogue:
        raise KlueInputError(path, where, "dialogue is empty")
    return WosRecord(
        guid=guid,
        domains=list(common.get_str_list(obj, "domains", path, where)),
        dialogue=[_turn(turn, t, path, where, item.labeled) for t, turn in enumerate(dialogue)],
    )


_reader = common.JsonListReader("wos", _record)
read = _reader.read
from_hub_rows = _reader.from_hub_rows
