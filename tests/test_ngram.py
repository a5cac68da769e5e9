"""The n-gram baseline (interpolated modified Kneser-Ney), the metrics every model is scored by, and the copy index."""

import math
from collections import defaultdict

import numpy as np
import pytest

from nabiya import ngram
from nabiya.errors import NabiyaError
from nabiya.metrics import Scorer, score, scored_targets
from nabiya.tokens import SPECIAL_TOKENS, TuneVocabulary

# <pad> <bos> <eos> <unk>, three conditions (4, 5, 6), then notes a..e (7..11) as codes.
VOCAB = TuneVocabulary(SPECIAL_TOKENS + ("<meter:?>", "<mode:?>", "<pickup:?>", "c4", "d4", "e4", "f4", "g4"))
A, B, C, D, E = 7, 8, 9, 10, 11
PREFIX = [1, 4, 5, 6]


def _tune(*notes) -> np.ndarray:
    return np.array(PREFIX + list(notes) + [2], dtype=np.int32)


def test_discounts_follow_chen_and_goodman():
    counts = np.array([1, 1, 1, 1, 2, 2, 3, 4])  # n1=4, n2=2, n3=1, n4=1: Y = 0.5
    assert np.allclose(ngram._discounts(counts), [0, 0.5, 1.25, 1.0])


def test_the_unigram_is_absolute_discounting_against_uniform():
    train = [_tune(A, A, A, A, B, B, B, C, C, D)]  # a:4 b:3 c:2 d:1 <eos>:1 -> D1 = D2 = 0.5, D3 = 1
    model = ngram.fit(train, VOCAB, order=1)
    probs = np.exp(model.log_probs([_tune(E)]).astype(np.float64))
    expected = {A: 3.5, B: 2.5, C: 2.0, D: 1.0, E: 0.5, 2: 1.0, 3: 0.5}  # in elevenths
    for token, elevenths in expected.items():
        assert probs[0, token] == pytest.approx(elevenths / 11, rel=1e-6)
    assert probs[0, [0, 1, 4, 5, 6]].sum() == 0  # never scored, never predicted


def _reference_probability(train, order, history, token):
    """Interpolated modified Kneser-Ney written straight from its definition, with dicts."""
    scored = VOCAB.is_scored
    depth = order - 1
    raw = [defaultdict(int) for _ in range(order)]
    for sequence in train:
        padded = [0] * depth + list(sequence)
        for place in range(depth + 1, len(padded)):
            if scored[padded[place]]:
                before = padded[place - depth : place]
                for k in range(order):
                    raw[k][(tuple(before[len(before) - k :]) if k else (), padded[place])] += 1
    tables = []
    for k in range(order):
        if k == order - 1:
            tables.append(raw[k])
            continue
        continuation = defaultdict(int)
        for (context, target), _ in raw[k + 1].items():
            continuation[(context[1:], target)] += 1
        tables.append(continuation)

    def probability(k, word):
        lower = probability(k - 1, word) if k else 1.0 / scored.sum()
        if not scored[word]:
            return 0.0
        table = tables[k]
        context = tuple(history[len(history) - k :]) if k else ()
        counts = {target: count for (c, target), count in table.items() if c == context}
        if not counts:
            return lower
        discounts = ngram._discounts(np.array(list(table.values())))
        total = sum(counts.values())
        gamma = sum(discounts[min(count, 3)] for count in counts.values()) / total
        own = counts.get(word, 0)
        return max(own - discounts[min(own, 3)], 0) / total + gamma * lower

    return probability(order - 1, token)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_the_model_matches_kneser_ney_from_its_definition_and_sums_to_one(order):
    rng = np.random.default_rng(order)
    train = [_tune(*rng.choice([A, B, C, D], size=rng.integers(4, 12), p=[0.4, 0.3, 0.2, 0.1])) for _ in range(12)]
    test = [_tune(*rng.choice([A, B, C, D, E], size=6)) for _ in range(3)]
    model = ngram.fit(train, VOCAB, order=order, max_order=5)
    log_probs = model.log_probs(test)
    assert log_probs.shape == (len(scored_targets(test, VOCAB)), len(VOCAB))
    assert np.allclose(np.exp(log_probs.astype(np.float64)).sum(axis=1), 1.0, atol=1e-6)
    row = 0
    for sequence in test:
        padded = [0] * 4 + list(sequence)
        for place in range(5, len(padded)):
            if not VOCAB.is_scored[padded[place]]:
                continue
            for token in (A, E, 2, 0):
                expected = _reference_probability(train, order, padded[:place], token)
                assert math.exp(log_probs[row, token]) == pytest.approx(expected, rel=1e-5, abs=1e-12)
            row += 1
    assert np.allclose(model.target_log_probs(test), log_probs[np.arange(row), scored_targets(test, VOCAB)], atol=1e-5)


def test_the_order_is_chosen_on_validation():
    rng = np.random.default_rng(0)

    def tune():  # a second-order source: the next note follows from the two before it, mostly
        notes = list(rng.choice([A, B, C, D], size=2))
        for _ in range(rng.integers(10, 30)):
            follows = [A, B, C, D][(notes[-2] * 3 + notes[-1]) % 4]
            notes.append(follows if rng.random() < 0.9 else rng.choice([A, B, C, D]))
        return _tune(*notes)

    train, valid = [tune() for _ in range(200)], [tune() for _ in range(40)]
    model = ngram.fit(train, VOCAB, validation=valid, max_order=6)
    assert set(model.validation_nll) == {1, 2, 3, 4, 5, 6}
    assert model.order == min(model.validation_nll, key=model.validation_nll.get) and model.order >= 3
    assert model.validation_nll[3] < min(model.validation_nll[1], model.validation_nll[2]) - 0.5
    for order, nll in model.validation_nll.items():
        assert model.with_order(order).nll(valid) == pytest.approx(nll)
    with pytest.raises(NabiyaError, match="validation"):
        ngram.fit(train, VOCAB)
    with pytest.raises(NabiyaError, match="order of 1 to 6"):
        model.with_order(7)


def test_evaluation_scores_the_same_positions_as_any_model():
    rng = np.random.default_rng(5)
    train = [_tune(*rng.choice([A, B, C], size=8)) for _ in range(20)]
    test = [_tune(*rng.choice([A, B, C, 3], size=8)) for _ in range(5)]
    model = ngram.fit(train, VOCAB, order=3)
    metrics = model.evaluate(test, VOCAB)
    targets = scored_targets(test, VOCAB)
    assert metrics.positions == len(targets) == 5 * 9
    again = score(model.log_probs(test), targets, VOCAB)  # from float32 log-probabilities
    assert metrics.to_json() == pytest.approx(again.to_json(), rel=1e-6)
    assert metrics.nll_nats == pytest.approx(model.nll(test), rel=1e-5)
    assert metrics.nll_bits == pytest.approx(metrics.nll_nats / math.log(2))
    assert metrics.perplexity == pytest.approx(math.exp(metrics.nll_nats))


def test_metrics_sum_probabilities_by_pitch_and_by_duration():
    vocab = TuneVocabulary(SPECIAL_TOKENS + ("<meter:?>", "<mode:?>", "<pickup:?>", "c4", "c8", "d4"))
    probs = np.full((1, len(vocab)), 1e-12)
    probs[0, 7:10] = [0.3, 0.3, 0.4]  # c4, c8, d4: d4 the likeliest token, but C the likeliest pitch
    probs /= probs.sum()
    metrics = score(np.log(probs), np.array([8]), vocab)  # the target is c8
    assert (metrics.accuracy, metrics.pitch_accuracy, metrics.duration_accuracy) == (0.0, 1.0, 0.0)
    assert metrics.nll_nats == pytest.approx(-math.log(0.3), rel=1e-6)
    assert metrics.pitch_nll_nats == pytest.approx(-math.log(0.6), rel=1e-6)
    assert metrics.duration_nll_nats == pytest.approx(-math.log(0.3), rel=1e-6)
    scorer = Scorer(vocab)  # batch by batch, with a mask: only what is scored counts
    scorer.add(np.log(probs)[None].repeat(2, axis=1), np.array([[8, 5]]), np.array([[True, True]]))
    assert scorer.result().positions == 1


def test_the_longest_copied_run_counts_notes_within_one_training_tune():
    index = ngram.CopyIndex([_tune(A, B, C, D, E), _tune(E, D, C)], VOCAB)
    assert index.longest_copied_run(_tune(A, B, C, D, E)) == 5
    assert index.longest_copied_run(_tune(C, D, E, E, D, C)) == 3  # no run across two tunes
    assert index.longest_copied_run(_tune(B, A, E)) == 1
    assert index.longest_copied_run(np.array([1, 4, 5, 6, 2])) == 0
    assert index.longest_copied_run(np.array([A, B, 3, C, D, E])) == 3  # <unk> breaks a run
    big = TuneVocabulary(SPECIAL_TOKENS + tuple(f"c:{n}" for n in range(1, 300)))  # ids past 255
    tunes = [np.arange(4, 300, dtype=np.int32)]
    assert ngram.CopyIndex(tunes, big).longest_copied_run(np.arange(130, 260)) == 130
