"""Humanized task names: four readable words derived from a task id.

A name is a handle for people (logs, the admin, ``result("ocean-tiger-maple-owl")``), not an
identity: two ids can share a name, and lookups by name return the most recent task.
"""

from __future__ import annotations

import uuid

__all__ = ["WORDS", "humanize", "new_id"]

_WORD_TEXT = """
    acorn acre alpha amber anchor apple april arrow aspen atlas autumn badger bagel bamboo
    banjo barley basil basin beacon beaver berry birch bison blossom blue bonsai border
    bramble brass breeze brick bridge bronze brook buffalo butter cabin cactus camel candle
    canoe canyon carbon cargo carrot castle cedar cello chalk cherry cider cinder citrus
    clay clover cobalt cocoa comet copper coral cotton cougar coyote crane crater cricket
    crimson crystal cup daisy dawn delta denim desert diamond dingo dolphin domino dragon
    drum dune eagle ebony echo elder elm ember emerald engine falcon fennel fern fiddle
    field fig finch fjord flame flint forest fossil fox frost galaxy garden garnet gecko
    ginger glacier globe gold goose granite grape gravel gull harbor hazel heron hickory
    hill honey hornet husky ink iris ivory jackal jade jasmine jazz jelly jigsaw juniper
    kayak kernel kettle kite kiwi koala lagoon lake lantern larch lava lemon lilac lime
    linen lizard lotus lunar lynx magnet mango maple marble meadow melon mesa meteor mint
    mocha moon moose moss nectar nest nickel nova nutmeg oak oasis ocean olive onyx opal
    orbit orchid otter owl oyster panda papaya parrot peach pearl pebble pecan pepper pine
    planet plum polar pony poppy prairie prism puffin quartz quill quince rabbit radish rain
    raven reef river robin rocket rose ruby saffron sage salmon sand sapphire satin scarlet
    shadow shell sierra silver sky slate sparrow spruce squid star stone storm summit swan
    tango thistle thunder tide tiger timber topaz tulip tundra turnip velvet violet walnut
    walrus wave willow winter wolf yak yarrow zebra zenith zephyr
"""

WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())
assert len(WORDS) == 256


def new_id() -> str:
    """A fresh task id: 32 lowercase hex digits (uuid4)."""
    return uuid.uuid4().hex


def humanize(task_id: str) -> str:
    """Four words for a hex id, the same words for the same id every time.

    The id's 16 bytes are folded into 4 by XOR-ing each run of four bytes; each folded byte
    picks one of 256 words.
    """
    raw = bytes.fromhex(task_id)
    if not raw:
        raise ValueError("cannot humanize an empty id")
    step = max(1, len(raw) // 4)
    picks = []
    for start in range(0, step * 4, step):
        folded = 0
        for byte in raw[start : start + step]:
            folded ^= byte
        picks.append(WORDS[folded])
    return "-".join(picks)
