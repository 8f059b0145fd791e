"""The About tab: what CCE is, its two forms, the long-tail protocol and how to read the verdict."""

ABOUT = """
## What is Complement Cross Entropy?

Kim, Lee and Jeon, *Imbalanced image classification with complement cross entropy*, Pattern Recognition
Letters 151 (2021). Besides pushing up the probability of the true class (cross entropy, CE), CCE adds a term
on the **wrong** classes: their probabilities, renormalised to sum to one (q = p / (1 − p_true)), have an
entropy **C** (the *complement entropy* of Chen et al. 2019). The idea: on imbalanced data the wrong-class
mass piles up on the head classes; making it flat ("neutralising" it) should help the tail classes.

### Two forms — and which one a run used

| form | formula | what it does to C |
|---|---|---|
| **CCE (paper form)** | CE + γ/(K−1) · C, γ = −1 | minimising it **raises** C: flatter wrong-class probabilities, as the paper describes |
| **CCE (reference code)** | CE − β · S with S = Σ p̂ log p̂ /(N·K), β = 1 — exactly the authors' published code | since S = −C/K this is CE + C/K: it **lowers** C (sharper), the opposite direction, and divides by K |

The compare view names the form each run used.

**Which form the authors trained.** In the authors' repository (unique-chan/Complement-Cross-Entropy at commit
da6f5926dd79b7e180dc9ae5c6817e33be909928), `CCE()` in `my_utils/trainer.py` returns
`cross_entropy + gamma_for_cce * complement_entropy` with `gamma_for_cce = -1`, and `my_criterion/CE.py` returns
S = Σ p̂ log(p̂ + 1e-10) / (N·K), the same S as the reference code. So they optimised CE − S = CE + C/K: the
reference (sharpening) form, not the flattening equation as it is usually read. The app keeps both forms and
reports each as it comes out; the `authors` preset (their recipe, with ResNet-32) trains CE against both.

The complement term is small (the paper-form term C/(K−1) ≤ log(K−1)/(K−1) ≈ 0.244 for CIFAR-10, the
reference-form term C/K ≤ 0.22), so differences between CE and CCE in short runs can be smaller than the
seed-to-seed noise.

### The long-tail protocol
CIFAR-10 / CIFAR-100 training sets are cut to an exponential profile (Cao et al. 2019, LDAM-DRW):
n_c = n_max · (1/ρ)^(c/(K−1)), with imbalance ratio ρ = largest / smallest class (ρ = 100: 5000 … 50
images). The test set stays the official balanced one, so per-class recall is the right per-class metric and
balanced accuracy (mean recall) equals accuracy. *Head / medium / tail* are the 30 % most frequent classes,
the middle 40 % and the 30 % rarest (CIFAR-10: classes 0–2 / 3–6 / 7–9); classes with equal counts share a
group, so the step profile has a head and a tail half and no medium group. The result grids also report the
*many / medium / few* convention of published CIFAR-100-LT tables (> 100, 20–100, < 20 training images per
class), and every table says which convention it uses.

### Reading the significance test
Each comparison is **paired**: same initial weights, same batches and augmentations, only the loss differs.
McNemar's exact test counts the test images that only one of the two models classifies correctly and asks
whether that split could be chance. A small p says *these two models* differ. It does **not** say the *loss*
is better: two models trained with the same loss from different seeds also differ (p ≈ 5e-7 here). To judge
a loss, train several seeds: the app then reports the mean difference in balanced accuracy with a 95 %
interval across seeds. If the interval excludes zero, the difference held up at this budget; if not, it did not.

What our own CPU-budget grids show (the *Results* tab, 3 seeds each, CIFAR-10-LT at ratios 10 and 100): CCE
moved balanced accuracy by about a point either way. The paper form showed no clear difference from CE at
either ratio; the reference form was about a point above CE at ratio 10 and not clearly different at ratio 100.
Logit-adjusted CE, or simply correcting CE's logits for the training prior after training, gained 9 to 13
points. The paper's gains come from 200-epoch runs (the `ldam-drw` and `authors` presets, meant for a
GPU), which we have not measured. More in `docs/design.md`.
"""
