"""Label names per task, in the id order every part of the project uses.

The order is the Hugging Face hub ``klue`` order wherever the hub defines one (YNAT, NLI, NER, RE),
so one head serves both the hub and the official release files. DP relations are strings on the
hub; their ids follow the official baseline's frequency order, which the official LAS needs to
form its OTHERS bucket (ids >= 15).
"""

from __future__ import annotations

YNAT_LABELS: tuple[str, ...] = ("IT과학", "경제", "사회", "생활문화", "세계", "스포츠", "정치")

NLI_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")

NER_LABELS: tuple[str, ...] = (
    "B-DT", "I-DT", "B-LC", "I-LC", "B-OG", "I-OG",
    "B-PS", "I-PS", "B-QT", "I-QT", "B-TI", "I-TI", "O",
)  # fmt: skip
NER_OUTSIDE = NER_LABELS.index("O")

RE_LABELS: tuple[str, ...] = (
    "no_relation",
    "org:dissolved", "org:founded", "org:place_of_headquarters", "org:alternate_names",
    "org:member_of", "org:members", "org:political/religious_affiliation", "org:product",
    "org:founded_by", "org:top_members/employees", "org:number_of_employees/members",
    "per:date_of_birth", "per:date_of_death", "per:place_of_birth", "per:place_of_death",
    "per:place_of_residence", "per:origin", "per:employee_of", "per:schools_attended",
    "per:alternate_names", "per:parents", "per:children", "per:siblings", "per:spouse",
    "per:other_family", "per:colleagues", "per:product", "per:religion", "per:title",
)  # fmt: skip
RE_NO_RELATION = 0
RE_ENTITY_TYPES: tuple[str, ...] = ("PER", "ORG", "LOC", "DAT", "POH", "NOH")

DP_DEPRELS: tuple[str, ...] = (
    "NP", "NP_AJT", "VP", "NP_SBJ", "VP_MOD", "NP_OBJ", "AP", "NP_CNJ", "NP_MOD",
    "VNP", "DP", "VP_AJT", "VNP_MOD", "NP_CMP", "VP_SBJ",
    "VP_CMP", "VP_OBJ", "VNP_CMP", "AP_MOD", "X_AJT", "VP_CNJ", "VNP_AJT", "IP", "X", "X_SBJ",
    "VNP_OBJ", "VNP_SBJ", "X_OBJ", "AP_AJT", "L", "X_MOD", "X_CNJ", "VNP_CNJ", "X_CMP", "AP_CMP",
    "AP_SBJ", "R", "NP_SVJ",
)  # fmt: skip
DP_OTHERS_FROM = 15  # official LAS merges deprel ids >= 15 into one OTHERS class

DP_POS_TAGS: tuple[str, ...] = (
    "NNG", "NNP", "NNB", "NP", "NR", "VV", "VA", "VX", "VCP", "VCN", "MMA", "MMD", "MMN", "MAG",
    "MAJ", "JC", "IC", "JKS", "JKC", "JKG", "JKO", "JKB", "JKV", "JKQ", "JX", "EP", "EF", "EC",
    "ETN", "ETM", "XPN", "XSN", "XSV", "XSA", "XR", "SF", "SP", "SS", "SE", "SO", "SL", "SH",
    "SW", "SN", "NA",
)  # fmt: skip

WOS_GATES: tuple[str, ...] = ("none", "dontcare", "yes", "no", "value")
