"""Time the data side of corpus training: reading a corpus cold and warm, tokens, batches, and the n-gram bar.

Usage::

    python benchmarks/bench_corpus.py                       # the default corpus
    python benchmarks/bench_corpus.py --corpus miscFolk     # any corpus spec
    python benchmarks/bench_corpus.py --cold                # read every tune (an empty cache) first

Prints the reading times (tunes read, from the cache, skipped by reason), the time to tokenize,
to make an epoch of batches, to fit the Kneser-Ney n-gram (orders 1..--max-order, the order
chosen on validation) and to evaluate it, and the validation and test NLL per order. The
test NLL of the chosen order is the bar a corpus model must beat.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402

import nabiya  # noqa: E402
from nabiya import ngram  # noqa: E402
from nabiya.batches import PackedWindows, TuneStreams  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", nargs="*", default=None)
    parser.add_argument("--cold", action="store_true", help="read into an empty cache first")
    parser.add_argument("--max-order", type=int, default=ngram.DEFAULT_MAX_ORDER)
    args = parser.parse_args()
    print(f"machine: {describe()}, load average {os.getloadavg()[0]:.1f}")
    if args.cold:
        os.environ["NABIYA_CORPUS_CACHE"] = tempfile.mkdtemp(prefix="nabiya-bench-corpus-")
    for label in (["cold"] if args.cold else []) + ["warm"]:
        started = time.perf_counter()
        corpus = nabiya.load_corpus(args.corpus)
        seconds = time.perf_counter() - started
        reading = corpus.reading
        print(f"load ({label}): {seconds:.1f} s · {len(corpus)} tunes · read {reading['tunes_read']}, "
              f"cached {reading['tunes_cached']}, jobs {reading['jobs']} · skipped {corpus.skipped()}")
    started = time.perf_counter()
    split = corpus.split()
    data = nabiya.tokenize_corpus(corpus, split=split)
    print(f"split and tokens: {time.perf_counter() - started:.1f} s · vocabulary {len(data.vocab)} · "
          f"tunes {len(data.train)}/{len(data.valid)}/{len(data.test)} · scored positions "
          f"{data.scored_positions('train')}/{data.scored_positions('valid')}/{data.scored_positions('test')}")
    for kind, options in ((TuneStreams, {"length": 128}), (PackedWindows, {"length": 256})):
        batches = kind(data.train, data.vocab.is_scored, batch_size=64, seed=0, **options)
        started = time.perf_counter()
        count = sum(1 for _ in batches.epoch(0))
        seconds = time.perf_counter() - started
        print(f"{kind.__name__} B=64 T={options['length']}: one epoch = {count} batches in {seconds:.2f} s "
              f"({1000 * seconds / count:.2f} ms a batch)")
    started = time.perf_counter()
    model = ngram.fit(data.train, data.vocab, validation=data.valid, max_order=args.max_order)
    fitted = time.perf_counter() - started
    started = time.perf_counter()
    best = model.evaluate(data.test, data.vocab)
    evaluated = time.perf_counter() - started
    print(f"n-gram: counted orders 1..{args.max_order} and chose order {model.order} on validation in {fitted:.1f} s; "
          f"full distributions on the test set in {evaluated:.1f} s")
    print("\n| order | validation NLL (nats) | test NLL (nats) | test NLL (bits) | test perplexity |")
    print("|---|---|---|---|---|")
    for order, nll in model.validation_nll.items():
        test = model.with_order(order).nll(data.test)
        mark = " (chosen)" if order == model.order else ""
        print(f"| {order}{mark} | {nll:.4f} | {test:.4f} | {test / 0.6931471805599453:.4f} | {2.718281828459045 ** test:.2f} |")
    unigram = model.with_order(1).evaluate(data.test, data.vocab)
    print("\n| model | NLL nats | NLL bits | perplexity | accuracy | pitch acc. | duration acc. |")
    print("|---|---|---|---|---|---|---|")
    for name, metrics in ((f"{model.order}-gram (KN)", best), ("unigram", unigram)):
        print(f"| {name} | {metrics.nll_nats:.4f} | {metrics.nll_bits:.4f} | {metrics.perplexity:.2f} | "
              f"{metrics.accuracy:.1%} | {metrics.pitch_accuracy:.1%} | {metrics.duration_accuracy:.1%} |")
    print(f"\nthe goal for a corpus model (15% below the best n-gram): test NLL <= {0.85 * best.nll_nats:.4f} nats")


if __name__ == "__main__":
    main()
