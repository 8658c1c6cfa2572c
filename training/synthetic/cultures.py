"""Invented workshops: syllable-built names (never a real people or place) and the leanings of their objects.

The collection attributes each mask to one of these, so a made-up object is never credited to a real community.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from training.synthetic.materials import MATERIALS, PATTERNS, SILHOUETTES

# Real peoples, mask traditions, places and a few unfortunate words that a syllable generator could stumble
# on; names containing any of these (or equal to the short ones) are rejected.
_REAL_NAMES = frozenset(
    """
    akan akye anyi ashanti asante attie baga bamana bambara bamileke bamum bassa baule baoule bembe benin bete
    biombo bobo bozo bwa chamba chewa chokwe ciwara dan dogon edo efik ejagham ekoi epa ewe fang fante fon
    fulani ga gelede grebo guro hausa hemba ibibio idoma ife igala igbo ijaw ijo jukun kalabari kete kifwebe
    kongo kota kpelle kran kuba kuyu kwele lega lele loma luba lulua lunda luvale mahongwe makonde makua
    mambila mangbetu marka mbole mende mossi mumuye nimba nkanu ngbaka nuna nupe ogoni oron pende poro punu
    salampasu sande senufo shona songye suku tabwa teke tikar tiv toma tsogo tsonga tusyan urhobo vili wee
    winiama yaka yaure yombe yoruba zande zulu xhosa sotho tswana ndebele kikuyu kamba maasai masai swahili
    sukuma nyamwezi yao lozi bemba tonga ngoni mbunda kuba bushoong kasai kwango kwilu sepik
    togo mali ghana kenya congo gabon niger nigeria sudan chad benue kano lagos accra dakar bamako
    malawi zambia angola uganda rwanda burundi tanzania somalia ethiopia eritrea liberia guinea gambia
    kaveri kumasi ibadan kinshasa lubumbashi zaire volta kasai lomami luri lur
    vudu vodu vodun juju zina kafir kike paki dago rape dope pope nude homo pedo bimbo mambo gomba wolo wollo boma mata
    """.split()
)
_ONSETS = ("k", "t", "m", "n", "b", "d", "s", "l", "v", "z", "r", "w", "y", "g", "p", "f", "h", "nd", "mb", "ts")
_VOWELS = ("a", "e", "i", "o", "u", "a", "o")
_CULTURE_FORMS = (
    "{} style", "{} style", "{} workshop", "Upper {} style", "Lower {} style",
    "{} valley style", "{} coast style", "{} highlands style", "{} river style",
)


def invent_name(rng: np.random.Generator) -> str:
    while True:
        syllables = int(rng.choice([2, 3, 3]))
        parts = [_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))] for _ in range(syllables)]
        if any(x == y for x, y in zip(parts, parts[1:], strict=False)):
            continue  # reduplicated syllables ("Gaga") read as baby talk
        name = "".join(parts)
        if rng.random() < 0.3:
            name += "n" if rng.random() < 0.5 else "ri"
        low = name.lower()
        if low in _REAL_NAMES or any(len(r) >= 4 and r in low for r in _REAL_NAMES):
            continue
        return name.capitalize()


@dataclass(frozen=True)
class Culture:
    """An invented workshop: a name and the leanings that make its objects recognisably related."""

    name: str
    silhouette: np.ndarray
    material: np.ndarray
    pattern: np.ndarray
    horn_p: float
    crest_p: float
    raffia_p: float
    scar_p: float


def make_cultures(count: int = 24, seed: int = 20240611) -> tuple[Culture, ...]:
    rng = np.random.default_rng(seed)
    used: set[str] = set()
    cultures = []
    while len(cultures) < count:
        base = invent_name(rng)
        if base in used:
            continue
        used.add(base)
        form = _CULTURE_FORMS[rng.integers(len(_CULTURE_FORMS))]
        cultures.append(
            Culture(
                name=form.format(base),
                silhouette=rng.dirichlet(np.full(len(SILHOUETTES), 0.6)),
                material=rng.dirichlet(np.full(len(MATERIALS), 0.5)),
                pattern=rng.dirichlet(np.full(len(PATTERNS), 0.7)),
                horn_p=float(rng.uniform(0.05, 0.6)),
                crest_p=float(rng.uniform(0.1, 0.6)),
                raffia_p=float(rng.uniform(0.1, 0.7)),
                scar_p=float(rng.uniform(0.2, 0.8)),
            )
        )
    return tuple(cultures)


CULTURES = make_cultures()


def lean(rng: np.random.Generator, options: Sequence[str], preference: np.ndarray, weight: float = 0.55) -> str:
    """Picks from the culture's preference with probability `weight`, otherwise uniformly."""
    p = weight * preference + (1 - weight) / len(options)
    return options[int(rng.choice(len(options), p=p / p.sum()))]
