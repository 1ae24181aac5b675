import torch

from src.buffer import ReservoirBuffer


def make(size=10, seed=0):
    return ReservoirBuffer(size, (1, 2, 2), n_classes=4, seed=seed)


def batch(start, n):
    ids = torch.arange(start, start + n)
    x = ids.view(-1, 1, 1, 1).expand(-1, 1, 2, 2).to(torch.uint8)
    return x, ids % 4, torch.zeros(n, dtype=torch.long)


def test_fills_slots_in_order_until_full():
    buf = make(10)
    x, y, t = batch(0, 7)
    slots = buf.add(x, y, t)
    assert slots.tolist() == list(range(7))
    assert len(buf) == 7 and int(buf.num_seen) == 7
    x, y, t = batch(7, 3)
    assert buf.add(x, y, t).tolist() == [7, 8, 9]
    assert buf.examples[:, 0, 0, 0].tolist() == list(range(10))


def test_replacement_probability_is_size_over_n_seen():
    # Over many independent reservoirs, the probability that sample n (0-based) is stored equals size/(n+1).
    size, n_stream, trials = 5, 40, 3000
    kept = torch.zeros(n_stream)
    for trial in range(trials):
        buf = make(size, seed=trial)
        for s in range(0, n_stream, 10):
            buf.add(*batch(s, 10))
        kept[buf.examples[:, 0, 0, 0].long()] += 1
    final_rate = kept / trials
    # at the end every sample has the same inclusion probability size / n_stream (= 0.125)
    assert abs(final_rate.mean().item() - size / n_stream) < 1e-6
    assert (final_rate - size / n_stream).abs().max().item() < 0.035


def test_single_insertion_probability_matches_algorithm_r():
    size, n_before, trials = 4, 19, 4000
    stored = 0
    for trial in range(trials):
        buf = make(size, seed=trial)
        buf.num_seen.fill_(n_before)
        stored += int(buf.reservoir_slots(1)[0] >= 0)
    assert abs(stored / trials - size / (n_before + 1)) < 0.02


def test_sample_without_replacement_and_all_when_fewer():
    buf = make(10)
    buf.add(*batch(0, 6))
    d = buf.sample(10)
    assert sorted(d.slots.tolist()) == list(range(6))  # fewer filled than asked: all of them
    buf.add(*batch(6, 30))
    for _ in range(50):
        d = buf.sample(8)
        assert len(set(d.slots.tolist())) == 8


def test_masked_sample_and_empty():
    buf = make(10)
    assert buf.sample(3) is None
    x, y, t = batch(0, 6)
    t[:3] = 1
    buf.add(x, y, t)
    d = buf.sample(10, mask=buf.task_ids == 1)
    assert sorted(d.slots.tolist()) == [0, 1, 2]


def test_same_slot_twice_in_a_batch_keeps_the_later_sample():
    buf = make(2, seed=3)
    buf.add(*batch(0, 2))
    slots = None
    for seed in range(200):  # find a draw where two samples of one batch hit the same slot
        b = make(2, seed=seed)
        b.add(*batch(0, 2))
        s = b.reservoir_slots(8)
        if (s >= 0).sum() >= 1:
            slots = s
            stored = s[s >= 0].tolist()
            assert len(stored) == len(set(stored))
    assert slots is not None


def test_batched_insert_equals_one_sample_at_a_time():
    # the batch path promises what a per-sample loop does, including a later sample of the batch
    # overwriting an earlier one on the same slot; tiny buffers make such collisions common
    for size in (1, 2, 3, 7):
        for seed in range(40):
            batched, single = make(size, seed), make(size, seed)
            start = 0
            for n in (5, 1, 9, 4, 12, 3):
                x, y, t = batch(start, n)
                slots = batched.add(x, y, t)
                for i in range(n):
                    single.add(x[i:i + 1], y[i:i + 1], t[i:i + 1])
                start += n
                assert torch.equal(batched.examples, single.examples), (size, seed, start)
                stored = slots[slots >= 0].tolist()
                assert len(stored) == len(set(stored))
                # every sample reported as stored is in its slot at the end of the batch
                for i in torch.nonzero(slots >= 0).flatten().tolist():
                    assert int(batched.examples[slots[i], 0, 0, 0]) == (start - n + i) % 256
            assert int(batched.num_seen) == int(single.num_seen) == start


def test_state_dict_roundtrip_includes_generator():
    buf = make(10, seed=1)
    buf.add(*batch(0, 25))
    state = buf.state_dict()
    other = make(10, seed=99)
    other.load_state_dict(state)
    assert torch.equal(other.examples, buf.examples) and int(other.num_seen) == 25
    assert buf.sample(5).slots.tolist() == other.sample(5).slots.tolist()
