"""Varied English sentences made offline, for phonetic coverage rather than meaning.

Sentences come from small grammar templates over a built-in vocabulary, mixed
with words drawn from a system word list (Debian's ``wamerican``,
``/usr/share/dict/words``) when it is installed. Questions, lists, exclamations
and several sentences per utterance give the prosody (and pauses) variety the
motion needs. Everything is drawn from the caller's seeded generator.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from splattalk.talk.corpus.phones import dictionary_words

WORD_LIST = Path("/usr/share/dict/words")

_NAMES = (
    "Anna Ben Carla David Emma Frank Grace Henry Iris Jack Kate Leo Maria Noah Olivia Peter Quinn Rosa "
    "Sam Tina Victor Wendy Zoe Oscar Bella Thomas Judith Mike Sophie George Lucy Paul Ruth Shawn Vivian"
).split()
_NOUNS = (
    "apple baby bag ball bank beach bird boat book bottle box boy bread bridge brother bus cake camera "
    "car cat chair cheese child church city clock cloud coat coffee computer cow cup desk doctor dog door "
    "dream egg engine eye farm father field fish flower foot forest friend garden girl glass gold hand hat "
    "heart horse house island jacket judge key king kitchen lake lamp leaf letter light lion machine map "
    "market milk money moon morning mother mountain mouth music nose ocean orange paper park pencil phone "
    "piano picture pizza plane plant pocket queen rabbit radio river road rock roof room rose school sheep "
    "shirt shoe shop sister sky snake snow song soup spoon star station stone storm street sugar summer sun "
    "table teacher theatre thumb ticket tiger tooth town toy train tree truck umbrella valley village voice "
    "wagon wall watch water wheel window winter wolf woman yard zoo thing weather vision treasure measure "
    "juice judge cherry chain shadow shower thunder feather whistle puzzle pebble bubble mirror yellow"
).split()
_ADJS = (
    "big small old young happy sad quick slow bright dark loud quiet warm cold heavy light soft rough "
    "smooth sharp blue green red white black yellow purple brown strange lovely busy empty full clever "
    "lazy gentle brave tiny huge fresh sweet bitter hungry thirsty wet dry early late famous funny pretty "
    "ugly rich poor strong weak shiny cheerful nervous curious broken careful wooden golden frozen"
).split()
_VERBS = (  # base, past
    "bring:brought build:built buy:bought call:called carry:carried catch:caught choose:chose clean:cleaned "
    "climb:climbed cook:cooked cut:cut draw:drew drink:drank drive:drove eat:ate fetch:fetched find:found "
    "fix:fixed follow:followed forget:forgot give:gave hold:held hide:hid keep:kept kick:kicked knock:knocked "
    "lift:lifted like:liked love:loved make:made meet:met move:moved open:opened paint:painted pick:picked "
    "play:played pull:pulled push:pushed read:read see:saw sell:sold send:sent share:shared show:showed "
    "sing:sang smell:smelled take:took teach:taught throw:threw touch:touched visit:visited wash:washed "
    "watch:watched wear:wore write:wrote check:checked borrow:borrowed measure:measured judge:judged"
).split()
_ADVS = (
    "quickly slowly quietly loudly happily sadly carefully gently suddenly often rarely always never today yesterday"
).split()
_PLACES = (
    "home",
    "school",
    "work",
    "the park",
    "the beach",
    "the market",
    "the city",
    "the station",
    "the office",
    "the garden",
)
_NUMBERS = "one two three four five six seven eight nine ten eleven twelve twenty thirty fifty hundred".split()
_INTERJ = "oh well yes no okay wow hey look listen really right".split()
_WH = "what where when why how who".split()


@lru_cache(maxsize=1)
def _dictionary_words() -> tuple[str, ...]:
    """Plain lower-case words from the system word list that pocketsphinx can align."""
    if not WORD_LIST.is_file():
        return ()
    known = dictionary_words()
    words = []
    for line in WORD_LIST.read_text(encoding="utf-8", errors="ignore").splitlines():
        w = line.strip()
        if 3 <= len(w) <= 12 and w.isalpha() and w.islower() and w.isascii() and w in known:
            words.append(w)
    return tuple(words)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _noun_phrase(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.2:
        return _pick(rng, _NAMES)
    det = _pick(rng, ("the", "a", "my", "your", "this", "that", "our", "every", "one"))
    n = _pick(rng, _NOUNS)
    if det == "a" and n[0] in "aeiou":
        det = "an"
    if r < 0.65:
        a = _pick(rng, _ADJS)
        det = "an" if det in ("a", "an") and a[0] in "aeiou" else ("a" if det == "an" else det)
        return f"{det} {a} {n}"
    if r < 0.75:
        return f"{_pick(rng, _NUMBERS)} {n}s"
    return f"{det} {n}"


def _wild_words(rng: np.random.Generator, k: int) -> list[str]:
    words = _dictionary_words()
    if not words:
        return [_pick(rng, _NOUNS) for _ in range(k)]
    return [_pick(rng, words) for _ in range(k)]


def _clause(rng: np.random.Generator) -> str:
    verb, past = _pick(rng, _VERBS).split(":")
    subj, obj = _noun_phrase(rng), _noun_phrase(rng)
    kind = rng.integers(8)
    if kind == 0:
        return f"{subj} {past} {obj}"
    if kind == 1:
        return f"{subj} will {verb} {obj} {_pick(rng, _ADVS)}"
    if kind == 2:
        return f"{subj} {past} {obj} at {_pick(rng, _PLACES)}"
    if kind == 3:
        return f"{subj} is {_pick(rng, _ADJS)} and {_pick(rng, _ADJS)}"
    if kind == 4:
        return f"{subj} wants to {verb} {obj} before {_pick(rng, _NUMBERS)} o'clock"
    if kind == 5:
        w = _wild_words(rng, 3)
        return f"{subj} said {w[0]}, {w[1]} and {w[2]}"
    if kind == 6:
        return f"we {past} {obj} because {subj} was {_pick(rng, _ADJS)}"
    return f"{subj} {_pick(rng, _ADVS)} {past} {obj} with {_noun_phrase(rng)}"


def _sentence(rng: np.random.Generator) -> str:
    kind = rng.random()
    if kind < 0.5:
        s, end = _clause(rng), "."
    elif kind < 0.65:
        verb = _pick(rng, _VERBS).split(":")[0]
        s, end = f"{_pick(rng, _WH)} did {_noun_phrase(rng)} {verb} {_noun_phrase(rng)}", "?"
    elif kind < 0.72:
        s, end = f"{_pick(rng, _INTERJ)}, {_clause(rng)}", "!"
    elif kind < 0.82:
        items = [_noun_phrase(rng) for _ in range(int(rng.integers(3, 5)))]
        s, end = f"please bring {', '.join(items[:-1])} and {items[-1]}", "."
    elif kind < 0.92:
        s, end = " ".join(_wild_words(rng, int(rng.integers(4, 9)))), "."
    else:
        s, end = f"do you think {_clause(rng)}", "?"
    return s[0].upper() + s[1:] + end


def make_sentences(rng: np.random.Generator, n: int, max_sentences: int = 3) -> list[str]:
    """``n`` utterance texts of one to ``max_sentences`` sentences each."""
    out = []
    for _ in range(n):
        k = int(rng.choice(np.arange(1, max_sentences + 1), p=_sentence_count_p(max_sentences)))
        out.append(" ".join(_sentence(rng) for _ in range(k)))
    return out


def _sentence_count_p(m: int) -> np.ndarray:
    p = np.array([0.45, 0.35, 0.2, 0.1, 0.05][:m], dtype=np.float64)
    return p / p.sum()
