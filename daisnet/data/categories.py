"""KINS categories (shared/REFERENCE.md): the 2020 release adds id 3 `rider`, which has no instances."""

from __future__ import annotations

KINS_CATEGORIES: dict[int, str] = {
    1: "cyclist",
    2: "pedestrian",
    3: "rider",
    4: "car",
    5: "tram",
    6: "truck",
    7: "van",
    8: "misc",
}
KINS_2019_CATEGORY_IDS = (1, 2, 4, 5, 6, 7, 8)
NAME_TO_ID = {name: cid for cid, name in KINS_CATEGORIES.items()}


def categories_json(ids: tuple[int, ...] | None = None) -> list[dict]:
    """The `categories` list of a KINS annotation file."""
    ids = tuple(KINS_CATEGORIES) if ids is None else ids
    return [{"id": cid, "name": KINS_CATEGORIES[cid], "supercategory": "kins"} for cid in ids]
