"""Plain reference loops of APGD (Croce & Hein 2020, Algorithm 1) and SA-PGD (method §3), written from the
formulas and sharing no code with sj_rga.attacks. Gradients come from calling the classifier."""
import numpy as np
import torch


def ref_schedule(steps):
    """Checkpoints w_j: the first interval ⌊0.22N⌋, each next ⌊0.03N⌋ shorter, never under ⌊0.06N⌋."""
    first, shrink, floor = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    out, length, w = [], first, 0
    while w + length <= steps:
        w += length
        out.append(w)
        length = max(length - shrink, floor)
    return out


def ref_loss(logits, y, kind):
    if kind == "ce":
        return -logits.log_softmax(1)[torch.arange(len(y)), y]
    z = logits
    rows = []
    for b in range(z.shape[0]):
        s = z[b].sort(descending=True).values
        others = [z[b, i] for i in range(z.shape[1]) if i != int(y[b])]
        rows.append(-(z[b, y[b]] - torch.stack(others).max()) / (s[0] - s[2] + 1e-12))
    return torch.stack(rows)


def _project(x, p, eps, norm):
    d = p - x
    if norm == "Linf":
        d = torch.max(torch.min(d, torch.full_like(d, eps)), torch.full_like(d, -eps))
    else:
        n = d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        d = torch.where(n > eps, d * (eps / n.clamp_min(1e-12)), d)
    return (x + d).clamp(0, 1)


def _grad(clf, p, y, kind):
    p = p.detach().requires_grad_(True)
    with torch.enable_grad():
        out = clf(p)
        loss = ref_loss(out, y, kind)
        g, = torch.autograd.grad(loss.sum(), p)
    return out.detach(), loss.detach(), g


def sample_generator(seed, index, part):
    """Sample ``index``'s own generator: seeded with NumPy's SeedSequence([seed, index, part]) (first 64-bit
    word, shifted right by 2), the per-sample stream contract of method §3."""
    word = np.random.SeedSequence([seed, index, part]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(word) >> 2)


START_PART = 2  # the random-start stream of a sample (method §3)


def _start(x, eps, norm, seed):
    """Row b from sample b's random-start stream."""
    rows = []
    for b in range(x.shape[0]):
        gen = sample_generator(seed, b, START_PART)
        rows.append(torch.rand(x.shape[1:], generator=gen) * 2 - 1 if norm == "Linf"
                    else torch.randn(x.shape[1:], generator=gen))
    r = torch.stack(rows)
    if norm == "Linf":
        d = r / r.flatten(1).abs().max(1).values.view(-1, 1, 1, 1)
    else:
        d = r / r.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return _project(x, x + eps * d, eps, norm)


def _unit(g, norm):
    return g.sign() if norm == "Linf" else g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)


def ref_apgd(clf, x, y, eps, norm, steps, kind, seed, rho=0.75):
    """One restart per sample; returns (points, fooled, number of halvings per sample)."""
    B = x.shape[0]
    checkpoints = ref_schedule(steps)
    cur = _start(x, eps, norm, seed)
    out, f, g = _grad(clf, cur, y, kind)
    fooled = out.argmax(1) != y
    answer = cur.clone()
    best, fbest, gbest = cur.clone(), f.clone(), g.clone()
    eta = [2 * eps] * B
    halvings = [0] * B
    prev = cur.clone()
    fprev = f.clone()
    rises = [0] * B
    halved_before = [True] * B
    fbest_at_check = fbest.clone()
    last_w = 0
    for k in range(steps):
        a = 1.0 if k == 0 else 0.75
        new = torch.empty_like(cur)
        for b in range(B):
            z = _project(x[b:b + 1], cur[b:b + 1] + eta[b] * _unit(g[b:b + 1], norm), eps, norm)
            here, before = cur[b:b + 1], prev[b:b + 1]
            new[b] = _project(x[b:b + 1], here + a * (z - here) + (1 - a) * (here - before), eps, norm)[0]
        prev, cur = cur, new
        out, f, g = _grad(clf, cur, y, kind)
        for b in range(B):
            if int(out[b].argmax()) != int(y[b]):
                fooled[b] = True
                answer[b] = cur[b]
            rises[b] += int(f[b] > fprev[b])
            if f[b] > fbest[b]:
                best[b], fbest[b], gbest[b] = cur[b], f[b], g[b]
        fprev = f.clone()
        if k + 1 in checkpoints:
            for b in range(B):
                cond1 = rises[b] <= rho * (k + 1 - last_w)
                cond2 = (not halved_before[b]) and float(fbest[b]) <= float(fbest_at_check[b])
                halve = cond1 or cond2
                if halve:
                    eta[b] /= 2
                    halvings[b] += 1
                    cur[b], g[b] = best[b], gbest[b]
                halved_before[b] = halve
                rises[b] = 0
            fbest_at_check = fbest.clone()
            last_w = k + 1
    for b in range(B):
        if not fooled[b]:
            answer[b] = best[b]
    return answer, fooled, halvings


def ref_sapgd(clf, x, y, eps, norm, steps, seed):
    checkpoints = ref_schedule(steps)
    cur = _start(x, eps, norm, seed)
    fooled = torch.zeros(x.shape[0], dtype=torch.bool)
    answer = cur.clone()
    m = torch.zeros_like(x)
    v = torch.zeros_like(x)
    s = eps
    for k in range(steps):
        out, _, g = _grad(clf, cur, y, "ce")
        hit = out.argmax(1) != y
        answer[hit], fooled = cur[hit], fooled | hit
        per = g.flatten(1)
        m = 0.5 * m + g / per.abs().mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
        v = 0.8 * v + g ** 2 / (per ** 2).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
        u = torch.where(v > 0, m / v.sqrt().clamp_min(1e-12), torch.zeros_like(m))
        if norm == "Linf":
            step = torch.max(torch.min(s * u, torch.full_like(u, s)), torch.full_like(u, -s))
        else:
            step = s * u / u.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        cur = _project(x, cur + step, eps, norm)
        if k + 1 in checkpoints:
            s = s / 2
    with torch.no_grad():
        hit = clf(cur).argmax(1) != y
    answer[hit], fooled = cur[hit], fooled | hit
    answer[~fooled] = cur[~fooled]
    return answer, fooled
