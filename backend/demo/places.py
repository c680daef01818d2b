"""The demo's place names and district boundaries (real), and name pools for what is made up below.

The district files are GCJ-02 (as Amap publishes them) and are converted to WGS84 here. Street and
town names are real Changzhou names of each district; where each one lies in the demo, and every
community and village name, is made up (``backend.demo.map``).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np
from shapely.geometry import MultiPolygon, Polygon, shape

from geo.gcj02 import gcj02_to_wgs84, transform_geometry

DATA_DIR = Path(__file__).resolve().parent / "data" / "changzhou"

Polygonal: TypeAlias = Polygon | MultiPolygon

CITY_CODE, CITY_NAME = "320400", "常州市"


@dataclass(frozen=True)
class DemoDistrict:
    code: str
    name: str
    urban: bool
    # Grids in the demo layer: a grid holds a few hundred households, so dense districts get many small ones.
    grids: int
    streets: tuple[str, ...]  # 街道 and 镇, in code order


DISTRICTS: tuple[DemoDistrict, ...] = (
    DemoDistrict(
        "320402",
        "天宁区",
        True,
        1900,
        ("天宁街道", "兰陵街道", "茶山街道", "红梅街道", "雕庄街道", "青龙街道", "丽华街道", "郑陆镇"),
    ),
    DemoDistrict(
        "320404",
        "钟楼区",
        True,
        1800,
        ("南大街街道", "荷花池街道", "新闸街道", "五星街道", "永红街道", "北港街道", "西林街道", "邹区镇"),
    ),
    DemoDistrict(
        "320411",
        "新北区",
        True,
        2700,
        (
            "河海街道",
            "三井街道",
            "龙虎塘街道",
            "新桥街道",
            "春江街道",
            "薛家镇",
            "罗溪镇",
            "西夏墅镇",
            "孟河镇",
            "奔牛镇",
        ),
    ),
    DemoDistrict(
        "320412",
        "武进区",
        False,
        3600,
        (
            "湖塘镇",
            "牛塘镇",
            "洛阳镇",
            "遥观镇",
            "横林镇",
            "横山桥镇",
            "雪堰镇",
            "前黄镇",
            "礼嘉镇",
            "嘉泽镇",
            "湟里镇",
            "南夏墅街道",
            "西湖街道",
            "丁堰街道",
            "戚墅堰街道",
            "潞城街道",
        ),
    ),
    DemoDistrict(
        "320413",
        "金坛区",
        False,
        1300,
        ("金城镇", "东城街道", "西城街道", "尧塘街道", "儒林镇", "直溪镇", "朱林镇", "薛埠镇", "指前镇"),
    ),
    DemoDistrict(
        "320481",
        "溧阳市",
        False,
        1700,
        (
            "溧城街道",
            "古县街道",
            "昆仑街道",
            "埭头镇",
            "上黄镇",
            "戴埠镇",
            "天目湖镇",
            "别桥镇",
            "上兴镇",
            "竹箦镇",
            "南渡镇",
            "社渚镇",
        ),
    ),
)

# Names of residential communities (社区): real Changzhou estate names first, then made-up pairs.
COMMUNITY_STEMS = (
    "红梅新村",
    "丽华新村",
    "翠竹新村",
    "北环新村",
    "清潭",
    "兰园",
    "永宁",
    "朝阳",
    "桃园",
    "东坡",
    "青山",
    "怡康",
    "白云",
    "星河",
    "锦绣",
    "凤凰",
    "龙城",
    "延陵",
    "运河",
    "博爱",
    "飞龙",
    "勤业",
    "常新",
    "茶花",
    "香樟",
    "梅园",
    "滨湖",
    "西园",
    "南苑",
    "北苑",
    "和平",
    "光华",
    "聚湖",
    "百馨",
    "嘉宏",
    "新华",
    "紫云",
    "东方",
)
_COMMUNITY_FIRST = "东西南北新永丽清翠兰桂华锦和康泰安宁嘉丰盛光明朝星月龙凤梅竹松桃荷春云虹晨景瑞福寿德仁金银玉"
_COMMUNITY_SECOND = "园苑门桥坊里湾庭城港河湖山亭潭泉林馨悦"
# Names of villages (村): real names first, then made-up pairs in the style of the area
# (a surname or a direction, then a water or settlement word: 陈家, 东塘, 前浜).
VILLAGE_STEMS = (
    "泰村",
    "九里",
    "长虹",
    "新丰",
    "双桥",
    "芦墅",
    "洮湖",
    "燕山",
    "平陵",
    "南山",
    "前马",
    "大塘",
    "沙涨",
    "上沛",
    "马家",
    "庙桥",
)
_VILLAGE_FIRST = "东西南北前后上下大小新老长高黄白石马陈王张李杨周沈蒋钱朱孙吴徐汤蔡潘何丁顾"
_VILLAGE_SECOND = "庄塘桥港浜墅巷湾圩墩泾埠岗河荡渎坝舍家头"


class NamePool:
    """Stems drawn without repeats: the given real ones first, then seeded pairs of characters."""

    def __init__(self, real: tuple[str, ...], first: str, second: str, rng: np.random.Generator) -> None:
        taken = set(real)
        pairs = [a + b for a, b in itertools.product(first, second) if a != b and a + b not in taken]
        order = rng.permutation(len(pairs))
        self._stems = iter([*real, *(pairs[i] for i in order)])

    def take(self) -> str:
        try:
            return next(self._stems)
        except StopIteration:
            raise ValueError("name pool exhausted: add characters to the pool") from None


def community_pool(rng: np.random.Generator) -> NamePool:
    return NamePool(COMMUNITY_STEMS, _COMMUNITY_FIRST, _COMMUNITY_SECOND, rng)


def village_pool(rng: np.random.Generator) -> NamePool:
    return NamePool(VILLAGE_STEMS, _VILLAGE_FIRST, _VILLAGE_SECOND, rng)


def read_boundary(code: str) -> Polygonal:
    """A boundary file (a bare GeoJSON geometry in GCJ-02) as a WGS84 shapely geometry."""
    raw = json.loads((DATA_DIR / f"{code}.geojson").read_text(encoding="utf-8"))
    geometry = shape({"type": raw["type"], "coordinates": raw["coordinates"]})
    wgs84 = transform_geometry(geometry, gcj02_to_wgs84)
    if not isinstance(wgs84, Polygon | MultiPolygon) or not wgs84.is_valid:
        raise ValueError(f"boundary {code} is not a valid polygon")
    return wgs84
