"""Humanized task names: four readable words derived from a task id.

A name is a handle for people (logs, the admin, ``result("ocean-tiger-maple-owl")``), not an
identity: two ids can share a name, and lookups by name return the most recent task.
"""

from __future__ import annotations

import functools
import os

from qcore.errors import ConfigError

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
    """A fresh task id: 32 lowercase hex digits of a random (version 4) UUID.

    Same format as ``uuid.uuid4().hex``, built without the UUID object: ids are minted on
    every enqueue, and this is cheaper (see tools/bench/README.md, 'task ids').
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


# Kept for the last ids: a worker derives each record's name twice (its key in the Redis store,
# and whether the compact record must carry the name), so the second is a look-up
# (tools/bench/README.md, 'issue 13's cost').
@functools.lru_cache(maxsize=1024)
def humanize(task_id: str) -> str:
    """Four words for a hex id, the same words for the same id every time.

    The id's bytes are cut into four runs; the bytes of each run are XOR-ed into one byte,
    which picks one of 256 words.
    """
    if len(task_id) == 32:
        # Fold all four 32-bit runs at once: after these two shifts, the low byte of each
        # run holds the XOR of that run's four bytes (no bits cross from one run's low half
        # into another's).
        value = int(task_id, 16)
        value ^= value >> 16
        value ^= value >> 8
        low = value.to_bytes(16, "big")
        return f"{WORDS[low[3]]}-{WORDS[low[7]]}-{WORDS[low[11]]}-{WORDS[low[15]]}"
    raw = bytes.fromhex(task_id)
    if not raw:
        raise ConfigError("cannot humanize an empty id")
    step = max(1, len(raw) // 4)
    folded_runs = []
    for start in range(0, step * 4, step):
        folded = 0
        for byte in raw[start : start + step]:
            folded ^= byte
        folded_runs.append(WORDS[folded])
    return "-".join(folded_runs)
