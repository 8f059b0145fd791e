"""The About tab: what CCE is, its two forms, the baselines, the long-tail protocol, how to read the verdict,
where the data and the results come from. The summary of the shipped grids is computed from their
results.json files (`cce_demo/claims.py`), never typed."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from ...claims import about_summary, readable_shipped_grids
from ...provenance import DATA_COPY_ENV, JPEG_COPY

ABOUT_TEXT = """
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

The complement term is small in value (the paper-form term C/(K−1) ≤ log(K−1)/(K−1) ≈ 0.244 for CIFAR-10,
the reference-form term C/K ≤ 0.22), but not in its pull: as the true-class probability p_g → 1, CE's
gradient vanishes while the complement term's does not (it still redistributes the wrong-class mass), so its
effect on training is not bounded by its size. Differences between CE and CCE in short runs can still be
smaller than the seed-to-seed noise.

### The baselines
- **Logit-adjusted CE** (Menon et al. 2021) trains on logits + τ·log prior. At τ = 1 it is the same loss as
  **Balanced Softmax** (Ren et al. 2020), so look for that baseline under either name.
- **LDAM-DRW** (Cao et al. 2019), the long-tail literature's usual reference: LDAM gives each class a margin
  ∝ n_c^(−1/4) (0.5 for the rarest class) on a scaled cosine classifier (scale 30), and *deferred re-weighting*
  (DRW) weights the loss by class-balanced weights (effective number, β = 0.9999) from the epoch where the
  learning rate first decays. DRW is an option of every loss (`ce_drw`, `cce_drw`, …); on schedules without a
  step decay it starts at `drw_start_fraction` of training (default 80 %). The `ldam-drw` preset trains CE,
  both CCE forms, LDAM-DRW and CE-DRW in one paired run, with LDAM-DRW's per-epoch warm-up.
- **Focal loss** (Lin et al. 2017), and post-hoc prior correction of any model (the Classify tab's toggle).

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
is better: two models trained with the same loss from different seeds also differ at small p. To judge
a loss, train several seeds: the app then reports the mean difference in balanced accuracy with a 95 %
interval across seeds. If the interval excludes zero, the difference held up at this budget; if not, it did not.

The interval covers training seeds on one fixed long-tailed subset, not the draw of the subset; a grid's
tables say how many comparisons they make and which survive Holm's correction.

"""

DATA_TEXT = f"""### Data and reproducibility
Every run and result grid records which copy of the data it used, detected from the data files' hashes (or
declared with `{DATA_COPY_ENV}`): this project's CIFAR-10 is **{JPEG_COPY}**, a JPEG (quality 75) re-encoding of
CIFAR-10, on which accuracies run lower than on the original pickled batches ("CIFAR-10 (original)"). A run
replays bit for bit only on the same CPU type with the same torch thread count, torch and torchvision
versions, deterministic settings and data files; run.json and results.json record all of them, and the grids'
"Reproduce it with" commands set the threads.

### What the shipped grids show
"""


def about_markdown(results_root: Path | None = None) -> str:
    """The About tab's text with the shipped grids' summary, computed from their files."""
    grids, unreadable = readable_shipped_grids(results_root) if results_root is not None else readable_shipped_grids()
    # A broken results file must not stop the app at start-up: it is named here, as the Results tab does.
    left_out = (f"\n\nLeft out, because they cannot be read: {', '.join(f'`{name}`' for name in unreadable)}."
                if unreadable else "")
    return (ABOUT_TEXT + DATA_TEXT + about_summary(grids) + left_out + "\n\nThe CCE paper reports 200-epoch runs. The "
            "`authors` preset follows the CCE authors' code and `ldam-drw` Cao et al.'s LDAM-DRW recipe (both 200 epochs, "
            "for a GPU); these grids do not measure them, and no number of the paper has been checked against them here. "
            "More in `docs/design.md`.\n")


ABOUT = about_markdown()


SAVE_PNG_HINT = """### Saving a chart as PNG
The charts are drawn as HTML, so they have no download menu of their own. To save one as a picture, use your
browser's screenshot tool: in Chrome or Edge, right-click the chart → *Inspect*, then right-click the highlighted
element → *Capture node screenshot*; in Firefox, right-click → *Take Screenshot* and click the chart. The numbers
behind the charts come with every run you download (Runs tab → *Download run*): `curves.csv` (training loss per
step) and `recall.csv` (per-class recall of each model), ready for a spreadsheet or your own plots."""


def build() -> None:
    """Create the tab's only component inside the current `gr.Tab`; it has no events."""
    gr.Markdown(ABOUT + "\n" + SAVE_PNG_HINT)
