"""WoS: dialogue state tracking; one scoring unit per user turn (its cumulative state).

Model side (head kind ``slot_gate``)
------------------------------------
**Examples.** One feature per user turn, predicting the turn's full cumulative state. The official
metrics score exactly that state after every user turn, so predicting it directly means a turn's
prediction never inherits an earlier turn's error (no state carried from turn to turn, as in TRADE
and the KLUE baseline), training and inference see the same inputs, and features are independent, so
they batch and shuffle freely. The price is quadratic featurization (each turn re-reads the dialogue
so far), bounded by the truncation below.

**Input.** ``[CLS] turn_a [SEP] ... turn_t [SEP]``: the dialogue up to and including the current
user turn ``t``, system and user turns alike, in chronological order, left-truncated to
``max_length`` tokens so that the current turn is always kept whole (a current turn longer than
that keeps its end). Turns are tokenized once per dialogue and their token slices concatenated. Span
positions are token positions of that input; ``token_starts``/``token_ends`` give each token's
character offsets into the dialogue string ``"\\n".join(turn texts)``, which ``decode`` rebuilds from
the records, so span text is cut from the dialogue exactly as written.

**Slots and values.** The slot list is the ontology's domain-slots, sorted (``settings.ontology``,
the release's ontology.json; without it, the slots and values seen in the training states, see
:func:`derived_schema`); it is saved in the checkpoint's ``tasks.json`` with each
slot's kind and value list, so a checkpoint decodes without the ontology file. Per slot a gate among
``mtl.data.labels.WOS_GATES`` (none / dontcare / yes / no / value): dontcare, yes and no are gates, never
values. A "value" gate is filled according to the slot kind:

* *categorical*: at most ``CATEGORICAL_MAX_VALUES`` ontology values besides none/dontcare/yes/no, and
  not times (종류, 지역, 가격대, 예약 요일/명수/기간, 택시 종류). The value is chosen among them, which
  also covers paraphrases a span cannot return ("두 명" -> 2, "중앙 쪽" -> 서울 중앙).
* *time*: values are ``HH:MM`` (예약 시간, 출발/도착 시간). The value is a span over a time expression
  ("12시 55분", "오후 1시 40분", "9시 반", "다섯시", "18:00"), normalised to ``HH:MM`` by
  :func:`parse_time` when decoded: users almost never type the ``HH:MM`` the state holds.
* *open*: everything else (names, stations, places; also yes/no-only slots, whose gate says it all).
  The value is a span of the dialogue. Its text is replaced by the ontology's spelling when the two
  are equal up to spaces ("예술의 전당" -> 예술의전당; the slot's own values first, then any slot's);
  otherwise it is kept as written.

**Finding a value in the context.** A span target is the most recent occurrence, ending at or before
the end of the current turn, of: for time slots, a time expression that normalises to the value;
then the value written exactly; then the value ignoring spaces. The first that lies wholly inside
the (truncated) input wins. Targets: ``gate_labels``, ``span_starts``/``span_ends`` (token
positions; -100 unless an open or time slot's value was found), ``value_labels`` (index into the
categorical slot's values; -100 otherwise), one entry per slot.

**Values that cannot be recovered** keep their "value" gate (the gate is still trained) but get no
span or value target; at decoding the model then returns some other span or value, so the turn is
lost. This is the ceiling of the design, measured on the real dev subset (700 dialogues, 5,076 user
turns, 46,465 gold items, the official ontology) by decoding every feature's own targets (a perfect
head), with the offline one-token-per-character tokenizer:

* untruncated context: 0.37 % of gold items are not recovered (170; mostly 지하철-출발지 only implied,
  "식당 근처 역에서", and names misspelled in the dialogue, "위잉키친" for 위잉치킨, or spelled with other
  spaces and absent from the ontology), plus 19 wrongly spelled items: JGA <= 96.8, slot F1 <= 99.8;
* ``max_length`` 510: 0.84 % (389: those plus values mentioned only before the window; 524 of the
  5,076 inputs are truncated), JGA <= 93.8, slot F1 <= 99.6. klue/roberta's subword tokens cover more
  text per token, so its truncation loss lies between the two; its token boundaries can also glue a
  particle to a value's last token, which this measure (one token per character) cannot show.

Categorical slots count as recovered even when their mention left the window (the target is the
value, not a position), so the caps are slightly optimistic there. Without the time normalisation
(values searched verbatim) about 4.9 % of items would be lost and JGA capped near 62.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtl.data import wos as wos_reader
from mtl.data.io import read_json
from mtl.data.labels import WOS_GATES
from mtl.errors import KlueInputError
from mtl.metrics.wos import wos_metrics
from mtl.tasks.base import Key, Task, check_list, input_error, input_text

IGNORE_INDEX = -100
GATE_IDS: dict[str, int] = {gate: i for i, gate in enumerate(WOS_GATES)}
NONE_GATE = GATE_IDS["none"]
VALUE_GATE = GATE_IDS["value"]
#: values that are gates, never spans or categorical choices
LITERAL_GATES: frozenset[str] = frozenset({"dontcare", "yes", "no"})
SPECIAL_VALUES: frozenset[str] = frozenset({"none"}) | LITERAL_GATES
#: a slot with at most this many (non-time) ontology values picks among them instead of pointing
CATEGORICAL_MAX_VALUES = 20
CATEGORICAL, TIME, OPEN = "categorical", "time", "open"
TURN_JOINER = "\n"  # never part of a value, so no value search matches across two turns

_HHMM = re.compile(r"\d{2}:\d{2}")
_HOUR_WORDS = {
    "한": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6,
    "일곱": 7, "여덟": 8, "아홉": 9, "열": 10, "열한": 11, "열두": 12,
}  # fmt: skip
_AFTERNOON = frozenset({"오후", "저녁", "밤"})
# "(오후) 1시 40분", "9시 반", "다섯시", "18:00"; "시간" (hours, a duration) is not a time of day.
TIME_PATTERN = re.compile(
    r"(?:(?P<period>오전|오후|아침|낮|저녁|밤|새벽)\s*)?"
    r"(?:(?<!\d)(?P<hh>\d{1,2})\s*:\s*(?P<mm>\d{2})(?!\d)"
    r"|(?P<h>(?<!\d)\d{1,2}|열한|열두|다섯|여섯|일곱|여덟|아홉|한|두|세|네|열)\s*시(?!간)"
    r"(?:\s*(?P<m>\d{1,2})\s*분|\s*(?P<half>반))?)"
)


# -- slot schema ------------------------------------------------------------------------------------
def load_ontology(path: str | Path) -> dict[str, list[str]]:
    """Read an ontology.json ``{"domain-slot": [values...]}``; a malformed file is an input error."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise KlueInputError(
            path, None, 'an ontology is a non-empty JSON object {"domain-slot": [values...]}'
        )
    for slot, values in data.items():
        if slot.count("-") != 1 or not all(slot.split("-")):
            raise KlueInputError(path, slot, "a slot name is 'domain-slot' with exactly one '-'", kind="slot")
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise KlueInputError(
                path, slot, "a slot's values must be a list of non-empty strings", kind="slot"
            )
    return data


def slot_kind(values: Sequence[str]) -> str:
    """``"time"``, ``"categorical"`` or ``"open"`` for a slot with these (non-special) values."""
    if values and 2 * sum(bool(_HHMM.fullmatch(v)) for v in values) >= len(values):
        return TIME
    if 0 < len(values) <= CATEGORICAL_MAX_VALUES:
        return CATEGORICAL
    return OPEN


def slot_schema(ontology: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Resources of the task: ``slots`` (sorted), and per slot its ``kinds`` and ``values``.

    ``values`` drop none/dontcare/yes/no (gates); a categorical slot's list is its choice set, an
    open or time slot's list only gives canonical spellings at decoding.
    """
    slots = sorted(ontology)
    values = [list(dict.fromkeys(v for v in ontology[s] if v not in SPECIAL_VALUES)) for s in slots]
    return {"slots": slots, "kinds": [slot_kind(v) for v in values], "values": values}


#: a slot derived from training states is categorical only when it was seen at least this many
#: times per distinct value: a closed set (종류, 요일) is then complete, while a name seen a few
#: times in a small train file stays a span, so values never seen in training can still be read
DERIVED_MIN_MENTIONS_PER_VALUE = 20


def state_counts(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per ``domain-slot``, how often each value occurs in the user turns' states of ``records``."""
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        for turn in record["dialogue"]:
            for item in turn.get("state") or ():
                domain, slot, value = item.split("-", 2)
                values = counts.setdefault(f"{domain}-{slot}", {})
                values[value] = values.get(value, 0) + 1
    return counts


def derived_schema(counts: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """The slot schema of the values seen in training (the hub has no ontology.json).

    Like :func:`slot_schema`, except that a slot with few mentions per distinct value is open (a
    span) rather than categorical: its value list could be missing values the dev data holds.
    """
    if not counts:
        raise KlueInputError(
            None,
            "tasks.wos.ontology",
            "the training dialogues hold no state items to derive the slots from; set tasks.wos.ontology",
            kind="key",
        )
    ontology = {slot: sorted(values) for slot, values in counts.items()}
    schema = slot_schema(ontology)
    for s, slot in enumerate(schema["slots"]):
        values = schema["values"][s]
        mentions = sum(n for v, n in counts[slot].items() if v not in SPECIAL_VALUES)
        if schema["kinds"][s] == CATEGORICAL and mentions < DERIVED_MIN_MENTIONS_PER_VALUE * len(values):
            schema["kinds"][s] = OPEN
    return schema


# -- values in text -----------------------------------------------------------------------------------
def _time_of(match: re.Match[str]) -> str | None:
    if match["hh"] is not None:
        hour, minute = int(match["hh"]), int(match["mm"])
    else:
        hour = int(match["h"]) if match["h"].isdigit() else _HOUR_WORDS[match["h"]]
        minute = int(match["m"]) if match["m"] else 30 if match["half"] else 0
    if match["period"] in _AFTERNOON and hour < 12:
        hour += 12
    if hour > 24 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def parse_time(text: str) -> str | None:
    """``HH:MM`` of the first time expression in ``text`` ("오후 1시 40분" -> "13:40"), or None."""
    for match in TIME_PATTERN.finditer(text):
        if (value := _time_of(match)) is not None:
            return value
    return None


class DialogueContext:
    """One dialogue tokenized once: its text, per-turn tokens and where values occur in it."""

    def __init__(self, texts: Sequence[str], ids: Sequence[list[int]], offsets: Sequence[list[Any]]) -> None:
        self.text = TURN_JOINER.join(texts)
        self.turn_ends: list[int] = []
        self.ids = list(ids)
        self.starts: list[list[int]] = []
        self.ends: list[list[int]] = []
        base = 0
        for text, offs in zip(texts, offsets, strict=True):
            arr = np.asarray(offs, dtype=np.int64).reshape(-1, 2) + base
            self.starts.append(arr[:, 0].tolist())
            self.ends.append(arr[:, 1].tolist())
            base += len(text)
            self.turn_ends.append(base)
            base += len(TURN_JOINER)
        self._compact: tuple[str, list[int]] | None = None
        self._times: list[tuple[int, int, str]] | None = None

    def window(self, turn: int, max_length: int, cls_id: int, sep_id: int) -> dict[str, list[int]]:
        """``input_ids``, ``span_mask``, ``token_starts``, ``token_ends`` of the input for ``turn``."""
        room = max_length - 2  # [CLS] and the current turn's [SEP]
        pieces: list[tuple[int, int]] = []  # (turn, first kept token), latest first
        for j in range(turn, -1, -1):
            if j < turn:
                room -= 1  # this turn's [SEP]
                if room <= 0:
                    break
            keep = min(len(self.ids[j]), room)
            pieces.append((j, len(self.ids[j]) - keep))
            room -= keep
        ids, mask, starts, ends = [cls_id], [0], [0], [0]
        for j, first in reversed(pieces):
            n = len(self.ids[j]) - first
            ids += self.ids[j][first:]
            ids.append(sep_id)
            mask += [1] * n
            mask.append(0)
            starts += self.starts[j][first:]
            starts.append(0)
            ends += self.ends[j][first:]
            ends.append(0)
        return {"input_ids": ids, "span_mask": mask, "token_starts": starts, "token_ends": ends}

    def occurrences(self, value: str, turn: int, as_time: bool) -> Iterator[tuple[int, int]]:
        """Character spans of ``value`` in the dialogue up to ``turn``, in order of preference.

        The most recent time expression meaning ``value`` (time slots), the most recent exact
        occurrence, the most recent occurrence ignoring spaces.
        """
        limit = self.turn_ends[turn]
        if as_time:
            for start, end, time in reversed(self.times()):
                if end <= limit and time == value:
                    yield start, end
                    break
        if (start := self.text.rfind(value, 0, limit)) >= 0:
            yield start, start + len(value)
        key = value.replace(" ", "")
        compact, positions = self.compact()
        if key and (k := compact.rfind(key, 0, bisect.bisect_left(positions, limit))) >= 0:
            yield positions[k], positions[k + len(key) - 1] + 1

    def compact(self) -> tuple[str, list[int]]:
        """The text without spaces, and each of its characters' position in the text."""
        if self._compact is None:
            positions = [i for i, c in enumerate(self.text) if c != " "]
            self._compact = (self.text.replace(" ", ""), positions)
        return self._compact

    def times(self) -> list[tuple[int, int, str]]:
        """``(start, end, "HH:MM")`` of every time expression, in text order."""
        if self._times is None:
            self._times = [
                (m.start(), m.end(), t)
                for m in TIME_PATTERN.finditer(self.text)
                if (t := _time_of(m)) is not None
            ]
        return self._times


class WindowText:
    """Character offsets of one input's text tokens, to turn character spans into token spans."""

    def __init__(self, window: Mapping[str, list[int]]) -> None:
        self.positions = np.flatnonzero(np.asarray(window["span_mask"], dtype=bool))
        self.starts = np.asarray(window["token_starts"])[self.positions]
        self.ends = np.asarray(window["token_ends"])[self.positions]

    def token_span(self, spans: Iterator[tuple[int, int]]) -> tuple[int, int] | None:
        """Token positions (start, end) of the first character span lying wholly in the input's text."""
        starts, ends = self.starts, self.ends
        for char_start, char_end in spans:
            # the first token ending after the span's start, the last one starting before its end
            first = int(np.searchsorted(ends, char_start, side="right"))
            last = int(np.searchsorted(starts, char_end, side="left")) - 1
            inside = first < len(starts) and first <= last
            if inside and starts[first] <= char_start and ends[last] >= char_end:
                return int(self.positions[first]), int(self.positions[last])
        return None


class WosTask(Task):
    name = "wos"
    reader = wos_reader
    default_max_length = 510
    dev_patterns = ("wos-v1*_dev*.json", "wos_dev.json")
    official_dev_file = "wos-v1_dev.subset.json"
    sample_file = "wos_{split}.json"
    sample_generator = "mtl.samples.generators.wos"
    published = {"joint_goal_accuracy": 47.49, "slot_f1": 91.64}  # KLUE-RoBERTa-base, KLUE test set
    bench_batch_size = 4
    release_resources = {"ontology": "ontology.json"}
    labels: tuple[str, ...] = ()
    prediction_fields = ("state",)
    key_fields = ("guid", "turn")  # a unit is one user turn of a dialogue
    main_metric = "joint_goal_accuracy"
    selection_metric = "slot_f1"  # KLUE-baseline's checkpoint selection
    metric_names = ("joint_goal_accuracy", "slot_f1")

    def gold_units(self, records: Sequence[Mapping[str, Any]]) -> dict[Key, Any]:
        """One unit per user turn, keyed by (dialogue guid, index of the turn in ``dialogue``)."""
        units: dict[Key, Any] = {}
        for r in records:
            for i, turn in enumerate(r["dialogue"]):
                if turn["role"] == "user":
                    units[(r["guid"], i)] = turn
        return units

    def key_of(self, pred: Mapping[str, Any]) -> Key:
        return (pred["guid"], pred["turn"])

    def record_texts(self, record: Mapping[str, Any]) -> list[str]:
        return [turn["text"] for turn in record["dialogue"] if turn["text"]]

    def check_key(self, pred: Mapping[str, Any]) -> str | None:
        turn = pred["turn"]
        if isinstance(turn, bool) or not isinstance(turn, int):
            return f"'turn' must be an integer, got {turn!r}"
        return super().check_key(pred)

    def describe_key(self, key: Key) -> str:
        guid, turn = key  # type: ignore[misc]
        return f"guid {guid} turn {turn}"

    def unknown_key_message(self, key: Key, gold: Mapping[Key, Any]) -> str:
        guid, turn = key  # type: ignore[misc]
        if any(g == guid for g, _ in gold):
            return f"turn {turn} of guid {guid} is not a user turn of that dialogue (predictions are per user turn)"
        return f"guid {guid} is not in the gold file"

    def check_prediction(self, pred: Mapping[str, Any], gold: Any) -> str | None:
        state = pred.get("state")
        if problem := check_list(state, "state"):
            return problem
        for item in state:
            if not isinstance(item, str) or len(item.split("-", 2)) != 3 or not all(item.split("-", 2)):
                return f"state item {item!r} is not 'domain-slot-value'"
        return None

    def reference_prediction(self, key: Key, gold: Any, *, alter: bool, seed: int) -> dict[str, Any]:
        guid, turn = key  # type: ignore[misc]
        state = list(gold["state"] or [])
        return {"guid": guid, "turn": turn, "state": state[:-1] if alter else state}

    def compute_metrics(self, golds: Sequence[Any], preds: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        return wos_metrics([g["state"] for g in golds], [p["state"] for p in preds])

    # -- model side ------------------------------------------------------------------------------
    head_kind = "slot_gate"
    token_fields = ("input_ids", "span_mask")
    #: ``turn``: index of the user turn in ``dialogue``; ``token_starts``/``token_ends``: each token's
    #: character offsets into ``"\n".join(turn texts)`` (0, 0 on [CLS]/[SEP])
    meta_fields = ("turn", "token_starts", "token_ends")

    def setup(self, settings: Any, tokenizer: Any, resources: Mapping[str, Any] | None = None) -> None:
        super().setup(settings, tokenizer, resources)
        res = self.resources
        self._slot_ids = {slot: s for s, slot in enumerate(res["slots"])}
        self._value_ids = [{v: k for k, v in enumerate(values)} for values in res["values"]]
        # Decoded span text equal to an ontology value up to spaces takes the ontology's spelling: the
        # slot's own values first, then any slot's (a station named as a taxi destination).
        self._spellings = [{v.replace(" ", ""): v for v in values} for values in res["values"]]
        self._any_spelling = {k: v for spellings in reversed(self._spellings) for k, v in spellings.items()}

    def build_resources(self, settings: Any) -> dict[str, Any]:
        """The slot schema of ``settings.ontology``, or derived from the train file's states when None.

        The hub has no ontology, so a release ontology is optional. A derived schema only knows the
        values seen in training; unseen values stay reachable through the span path, because a
        derived slot is categorical only when training shows it to be a closed set (see
        :func:`derived_schema`). No file and no train file is an error naming the key; the bundled
        sample ontology is never used unless named.
        """
        ontology = getattr(settings, "ontology", None)
        if ontology:
            if not Path(ontology).is_file():
                raise KlueInputError(
                    ontology,
                    "tasks.wos.ontology",
                    "file not found (the release's ontology.json; leave the key out to derive the "
                    "slots and values from the training states)",
                    kind="key",
                )
            return slot_schema(load_ontology(ontology))
        train = getattr(settings, "train", None)
        if not train:
            raise KlueInputError(
                None,
                "tasks.wos.ontology",
                "no ontology and no train file to derive one from: set tasks.wos.ontology or tasks.wos.train",
                kind="key",
            )
        return derived_schema(state_counts(self.read(train, split="train")))

    def head_args(self) -> dict[str, Any]:
        res = self.resources
        return {
            "num_slots": len(res["slots"]),
            "num_gates": len(WOS_GATES),
            "value_sizes": [
                len(v) if k == CATEGORICAL else 0 for k, v in zip(res["kinds"], res["values"], strict=True)
            ],
            "max_value_length": self.settings.max_answer_length,
        }

    def featurize(self, batch: Mapping[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        dialogues = batch["dialogue"]
        enc = self.tokenizer(
            [turn["text"] for dialogue in dialogues for turn in dialogue],
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_token_type_ids=False,
            return_attention_mask=False,
        )
        labeled = all(t["state"] is not None for d in dialogues for t in d if t["role"] == "user")
        names = ["example_index", "turn", "input_ids", "span_mask", "token_starts", "token_ends"]
        if labeled:
            names += ["gate_labels", "span_starts", "span_ends", "value_labels"]
        out: dict[str, list[Any]] = {name: [] for name in names}
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        cursor = 0
        for dialogue, index in zip(dialogues, indices, strict=True):
            n = len(dialogue)
            context = DialogueContext(
                [t["text"] for t in dialogue],
                enc["input_ids"][cursor : cursor + n],
                enc["offset_mapping"][cursor : cursor + n],
            )
            cursor += n
            for t, turn in enumerate(dialogue):
                if turn["role"] != "user":
                    continue
                window = context.window(t, self.settings.max_length, cls_id, sep_id)
                out["example_index"].append(index)
                out["turn"].append(t)
                for key, value in window.items():
                    out[key].append(value)
                if labeled:
                    for key, value in self.targets(turn["state"], context, window, t).items():
                        out[key].append(value)
        return out

    def targets(
        self, state: Sequence[str], context: DialogueContext, window: Mapping[str, list[int]], turn: int
    ) -> dict[str, list[int]]:
        """Per-slot targets of one user turn's cumulative ``state``; slots outside the schema are ignored."""
        res = self.resources
        size = len(res["slots"])
        gates = [NONE_GATE] * size
        starts, ends, values = [IGNORE_INDEX] * size, [IGNORE_INDEX] * size, [IGNORE_INDEX] * size
        text: WindowText | None = None  # built on the first span target only
        for item in state:
            domain, slot, value = item.split("-", 2)
            s = self._slot_ids.get(f"{domain}-{slot}")
            if s is None or value == "none":
                continue
            if value in LITERAL_GATES:
                gates[s] = GATE_IDS[value]
                continue
            gates[s] = VALUE_GATE
            kind = res["kinds"][s]
            if kind == CATEGORICAL:
                values[s] = self._value_ids[s].get(value, IGNORE_INDEX)
                continue
            text = text or WindowText(window)
            if span := text.token_span(context.occurrences(value, turn, kind == TIME)):
                starts[s], ends[s] = span
        return {"gate_labels": gates, "span_starts": starts, "span_ends": ends, "value_labels": values}

    def decode(
        self, records: Sequence[Mapping[str, Any]], features: Any, outputs: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        # ``[:]`` reads a whole datasets column at once (iterating one reads it row by row, 30x slower).
        columns = {k: features[k][:] for k in ("example_index", "turn", "token_starts", "token_ends")}
        texts: dict[int, str] = {}
        states: dict[tuple[int, int], list[str]] = {}
        for f, out in enumerate(outputs):
            index, turn = columns["example_index"][f], columns["turn"][f]
            if index not in texts:
                texts[index] = TURN_JOINER.join(t["text"] for t in records[index]["dialogue"])
            starts, ends = columns["token_starts"][f], columns["token_ends"][f]
            states[(index, turn)] = self.decode_state(out, texts[index], starts, ends)
        rows = []
        for i, record in enumerate(records):
            for t, turn in enumerate(record["dialogue"]):
                if turn["role"] == "user":
                    rows.append({"guid": record["guid"], "turn": t, "state": states.get((i, t), [])})
        return rows

    def decode_state(
        self, out: Mapping[str, Any], text: str, starts: Sequence[int], ends: Sequence[int]
    ) -> list[str]:
        """The ``domain-slot-value`` items of one feature's head outputs (values "" or "none" dropped)."""
        res = self.resources
        gates = np.asarray(out["gate"])[: len(res["slots"])]
        state = []
        for s in np.flatnonzero((gates != NONE_GATE) & (gates >= 0) & (gates < len(WOS_GATES))):
            gate = WOS_GATES[int(gates[s])]
            if gate in LITERAL_GATES:
                value = gate
            elif res["kinds"][s] == CATEGORICAL:
                choice, choices = int(out["value"][s]), res["values"][s]
                value = choices[choice] if 0 <= choice < len(choices) else ""
            else:
                value = self.span_value(
                    int(s), int(out["span_start"][s]), int(out["span_end"][s]), text, starts, ends
                )
            if value and value != "none":
                state.append(f"{res['slots'][s]}-{value}")
        return state

    def span_value(
        self, slot: int, start: int, end: int, text: str, starts: Sequence[int], ends: Sequence[int]
    ) -> str:
        """The value a predicted token span names: its text, as a time or in the ontology's spelling."""
        if not 0 <= start <= end < len(starts):
            return ""
        raw = " ".join(text[starts[start] : ends[end]].split())
        if self.resources["kinds"][slot] == TIME and (time := parse_time(raw)) is not None:
            return time
        key = raw.replace(" ", "")
        return self._spellings[slot].get(key) or self._any_spelling.get(key, raw)

    # -- per-task recipe (README "Per-task budgets") ------------------------------------------------
    #: training units (features) of the KLUE train split: 8,000 dialogues x 7.25 user turns (the dev dialogues' mean)
    klue_train_size = 58_000
    #: evaluation units (features) of the KLUE dev split: 1,000 dialogues x 7.25 user turns, for budgets planned without data
    klue_dev_size = 7_250
    #: KLUE-baseline's epochs for this task (run_all.sh)
    baseline_epochs = 5

    # -- raw inputs (the Python API) ---------------------------------------------------------------
    def records_from_inputs(self, inputs: Sequence[Any]) -> list[dict[str, Any]]:
        """One dialogue per item: its turns as strings, user first, then system and user alternating."""
        records = []
        for i, item in enumerate(inputs):
            if isinstance(item, str) or not isinstance(item, Sequence) or not item:
                raise input_error(
                    self.name, i, "expected a non-empty list of turns (strings, user turn first)"
                )
            dialogue = [
                {
                    "role": "user" if t % 2 == 0 else "sys",
                    "text": input_text(self.name, i, text, f"turn {t}"),
                    "state": None,
                }
                for t, text in enumerate(item)
            ]
            records.append({"guid": f"input-{i}", "domains": [], "dialogue": dialogue})
        return records

    def results(
        self,
        records: Sequence[Mapping[str, Any]],
        predictions: Sequence[Mapping[str, Any]],
        features: Any,
        outputs: Sequence[Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """``{"turn": index of the last user turn, "state": ["domain-slot-value", ...]}`` per dialogue."""
        last: dict[str, Mapping[str, Any]] = {}
        for p in predictions:  # decode lists each dialogue's user turns in order
            last[p["guid"]] = p
        return [{"turn": last[r["guid"]]["turn"], "state": list(last[r["guid"]]["state"])} for r in records]

    scoring_unit = "user turn"
    # "감사합니다." ends a hundred dialogues: grouping by it would put most of WoS on one side
    formulaic_min_items = 3
    baseline_description = "empty state"

    def split_texts(self, item: Any) -> list[str]:
        return [turn["text"] for turn in item["dialogue"]]

    def trivial_baseline(
        self, train: Sequence[Mapping[str, Any]], heldout: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        return [
            {"guid": r["guid"], "turn": i, "state": []}
            for r in heldout
            for i, turn in enumerate(r["dialogue"])
            if turn["role"] == "user"
        ]
