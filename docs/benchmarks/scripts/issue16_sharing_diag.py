exec(open('docs/benchmarks/scripts/issue16_sharing_setup.py').read())
torch.manual_seed(0)
net = sp.supernet(10)
# registration
n_all = sum(p.numel() for p in net.parameters()); n_ch = sum(p.numel() for p in net.choices.parameters())
print("params total", n_all, "in choices", n_ch, "stem", sum(p.numel() for p in net.stem.parameters()), "head+cls", sum(p.numel() for p in net.head.parameters())+sum(p.numel() for p in net.classifier.parameters()))
# exactness: supernet path == extracted net, eval mode
net.eval(); xb = x[:16]
with torch.no_grad():
    a = net(xb, g); b = net.extract(g).eval()(xb); a2 = net(xb, g)
print("supernet vs extracted max diff", (a-b).abs().max().item(), "repeat diff", (a-a2).abs().max().item())
# which modules run in one forward: hook count per layer
ran = []
hooks = [blk.register_forward_hook(lambda m, i, o, k=(li, c): ran.append(k)) for li, blocks in enumerate(net.choices) for c, blk in enumerate(blocks)]
net.train(); rng = np.random.default_rng(3); gg = sp.sample(rng); net(xb, gg)
print("genome", gg, "blocks run", ran)
for h in hooks: h.remove()
# optimizer: unselected choices untouched after steps (set_to_none default) and with zeros
for none in (True, False):
    torch.manual_seed(0); net = sp.supernet(10); net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)
    g1 = tuple(0 for _ in sp.slots); g2 = tuple(1 for _ in sp.slots)
    w = net.choices[3][2].conv_pwl[0].weight.detach().clone(); w0 = net.choices[3][0].conv_pwl[0].weight.detach().clone()
    for gg in (g1, g2, g2):
        opt.zero_grad(set_to_none=none); nn.functional.cross_entropy(net(x[:32], gg), y[:32]).backward(); opt.step()
    print(f"set_to_none={none}: never-selected choice changed by {(net.choices[3][2].conv_pwl[0].weight - w).abs().max().item():.2e}; choice 0 (selected at step 1 only) changed by {(net.choices[3][0].conv_pwl[0].weight - w0).abs().max().item():.2e}")
# gradient coherence of shared weights (head 1x1 conv, classifier) across paths vs across batches
torch.manual_seed(0); net = sp.supernet(10); net.train()
def grads(gg, idx):
    net.zero_grad(set_to_none=True); nn.functional.cross_entropy(net(x[idx], gg), y[idx]).backward()
    return {k: p.grad.flatten().clone() for k, p in [("head", net.head[0].weight), ("cls", net.classifier.weight), ("stem", net.stem[0][0].weight)]}
rng = np.random.default_rng(5)
b1, b2 = torch.arange(0, 256), torch.arange(256, 512)
cos = lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim=0).item()
gA1 = grads(g, b1); gA2 = grads(g, b2)
paths = [sp.sample(rng) for _ in range(4)]
gR = [grads(p, b1) for p in paths]
gT = [grads(tuple(int(rng.integers(0,6)) if not sp.slots[i].keeps_shape else g[i] for i in range(len(g))), b1) for _ in range(4)]
for k in ("head", "cls", "stem"):
    same_path = cos(gA1[k], gA2[k])
    diff_path = np.mean([cos(gR[i][k], gR[j][k]) for i in range(4) for j in range(i+1, 4)])
    diff_trans = np.mean([cos(gT[i][k], gT[j][k]) for i in range(4) for j in range(i+1, 4)])
    print(f"grad cos of {k}: same path, different batches {same_path:.3f}; same batch, different random paths {diff_path:.3f}; same batch, paths differing only at transitions {diff_trans:.3f}")
