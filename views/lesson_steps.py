"""The Lessons page's steps: what each one says, shows and lets you turn.

A step is an Explore view (``params``: Explore URL parameters, so "open in Explore" is that link), one or two
``knobs`` (Explore parameter names the step lets you change), a paragraph, a "what to notice" line, and its
``claims``: every statement of fact the prose makes about a run, each with an id. ``tests/test_lessons.py`` holds
one check per id that runs the engine on the step's view and asserts the statement, and fails when a claim has no
check — so the prose cannot drift from what the engine does. Numbers in the prose are rounded as printed.

The prose is ours, written from the facts in the SAM-GS paper and the MSI/POMSI poster (../shared/teaching-notes.md).
Nothing here imports Streamlit.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    slug: str                 # the step's name in the URL: /lessons?lesson=<slug>
    title: str
    text: str                 # the paragraph (markdown); "{claim-id}" marks where a claim is stated
    params: dict              # the Explore view (URL parameters)
    notice: str               # "what to notice"
    claims: dict = field(default_factory=dict)     # id -> the sentence, as the prose states it
    knobs: tuple = ()         # Explore parameter names shown as controls (dstart: which start the arrows show)

    @property
    def prose(self) -> str:
        """The paragraph with each claim's sentence in its place."""
        return self.text.format(**self.claims)


STEPS = (
    Step(
        slug="conflict", title="Two kinds of conflict",
        text=("Every task brings its own gradient, and the plain method adds them. Two things can go wrong with "
              "that sum. The gradients can point apart — **angle conflict**, a negative cosine: the sum is "
              "shorter than either gradient alone, so progress slows, yet it still points somewhere useful. Or "
              "one gradient can be much longer than the other — **magnitude conflict**: the sum then follows the "
              "long one, and only its task improves. *Gradient magnitude similarity*, GMS = 2|g₁||g₂| / "
              "(|g₁|² + |g₂|²), measures the second: 1 for equal lengths, towards 0 when one dominates. "
              "{angle} {magnitude}"),
        params={"methods": "ls", "starts": "0,5;-8,-10.5", "steps": "2000", "pipe": "clean", "view": "diag"},
        notice="Switch between the two starts and compare the black arrow (−d, the step LS takes) with the two task "
               "arrows.",
        claims={
            "angle": ("At the first start, (0, 5), both gradients have the same length (GMS = 1.00) but point "
                      "apart (cos = −0.64): their sum is 0.18 long, shorter than either gradient (0.22)."),
            "magnitude": ("At the second, (−8, −10.5), they nearly agree in direction (cos = 0.98), but task 1's "
                          "gradient is about 15 times longer (GMS = 0.14), and the sum points within 1° of it."),
        },
        knobs=("dstart",)),
    Step(
        slug="sum", title="Why the plain sum is not enough",
        text=("The one-optimum problem (the Nash-MTL and CAGrad toy) has two losses and a single global optimum "
              "of their sum, the gold star; the thick line is the Pareto set, where no task can improve without "
              "the other getting worse. Both methods start from the paper's seven points and take 20 000 Adam "
              "steps. {ls} {samgs}"),
        params={"methods": "samgs,ls"},
        notice="Follow the grey LS paths from the five upper starts: where do they end, and where do SAM-GS's?",
        claims={
            "ls": ("LS, the plain sum, reaches the optimum from only 2 of the 7 starts and never reaches the Pareto "
                   "set from the other 5: 2 stall and 3 are still moving when the steps run out."),
            "samgs": "SAM-GS reaches the optimum from all 7 starts, every run within 18 000 steps.",
        },
        knobs=("lr",)),
    Step(
        slug="gamma", title="SAM-GS's threshold γ",
        text=("SAM-GS watches GMS at every step. When it falls below the threshold γ the gradients are "
              "*equalised*: each is scaled to unit length, they are summed, and the sum is scaled back to their "
              "mean length. Otherwise SAM-GS takes a momentum step (β₁), trusted less when the gradients' sizes "
              "differ (β₂). So γ near 0 means momentum only, γ near 1 means equalising almost always. "
              "{g01} {g0} {g1}"),
        params={"methods": "samgs"},
        notice="Slide γ from 0 to 1 and watch the runs from the side starts: where do they end?",
        claims={
            "g01": "At the paper's γ = 0.1 SAM-GS reaches the optimum from all 7 starts.",
            "g0": ("At γ = 0 equalisation never fires, and only 3 runs reach the optimum: the other 4 stall away "
                   "from the Pareto set."),
            "g1": ("At γ = 1 every run reaches the Pareto set, but only 1 reaches the optimum: on the set the two "
                   "gradients point in opposite directions, so once scaled to unit length they cancel, and "
                   "equalising stops a run wherever it meets the set."),
        },
        knobs=("gamma",)),
    Step(
        slug="saddle", title="Two optima and the saddle between them",
        text=("In the two-optima problem each task has a global and a local minimum, and the sum of the losses "
              "has two global optima (at the tasks' *local* minima) with a saddle point between them. Six starts, "
              "21 000 steps. {reach} {saddle}"),
        params={"land": "two_optima", "methods": "samgs,ls"},
        notice="Find the SAM-GS run that starts at the bottom, on the line of symmetry: where does it stop?",
        claims={
            "reach": "SAM-GS reaches one of the two optima from 5 of the 6 starts; LS from 1.",
            "saddle": ("From (0, −8) SAM-GS stops on the Pareto set at (0, −10.84), the saddle: there the two task "
                       "gradients have the same length and opposite directions (cos = −1, GMS = 1), so equalising "
                       "them changes nothing. The paper names this as its method's limit."),
        },
        knobs=("gamma",)),
    Step(
        slug="weights", title="Task weights move the target",
        text=("Weighting the tasks (w₁ for task 1, w₂ = 1 − w₁ for task 2) changes which point of the Pareto set "
              "is best: the optimum of the weighted sum slides along the set. {move} {follow}"),
        params={"methods": "samgs", "wmode": "sum1", "w1": "0.3"},
        notice="Move w₁ and watch the star travel along the thick line, and the runs go after it.",
        claims={
            "move": ("With equal weights the optimum is at (0, −8.36); with w₁ = 0.3 it moves to (−2.80, −8.37), "
                     "still on the Pareto set, and with w₁ = 0.7 to its mirror image (2.80, −8.37)."),
            "follow": "At w₁ = 0.3 SAM-GS reaches the moved optimum from 6 of the 7 starts.",
        },
        knobs=("w1",)),
    Step(
        slug="surgery", title="Projecting, rescaling, or both",
        text=("The MSI/POMSI poster names two troubles of multi-task learning: conflicting directions and scale "
              "imbalance. **PCGrad** answers the first: it projects each conflicting gradient onto the normal "
              "plane of the other. **MSI** answers the second: it rescales the gradients' lengths by how similar "
              "they are. **POMSI** does both, projecting and then rescaling. The poster gives no exact rule for "
              "MSI and POMSI: Gradscape reconstructs them from its description (methods-spec §6.13). {pcgrad} "
              "{msi}"),
        params={"methods": "pcgrad,msi,pomsi"},
        notice="Compare where each method's runs end: at the star, elsewhere on the thick line, or still on their way.",
        claims={
            "pcgrad": "PCGrad reaches the Pareto set from 5 of the 7 starts, but the optimum from only 1.",
            "msi": ("MSI reaches the optimum from 2 starts and the Pareto set from no other: the other 5 are "
                    "still moving after 20 000 steps. POMSI reaches the Pareto set from 3 starts, the optimum "
                    "from 1."),
        },
        knobs=("pipe",)),
    Step(
        slug="nan", title="When a run turns NaN at the optimum",
        text=("The *reference* pipeline reproduces the SAM-GS authors' published toy code, quirks included; the "
              "*clean* pipeline applies each method as its own paper defines it. In the published code CAGrad's "
              "step can become NaN (not a number) once a run sits at the optimum; Gradscape then freezes the run "
              "where it was. Such a run did reach the optimum, and counts so — a × marks it on the outcome map. "
              "{reference} {clean}"),
        params={"methods": "cagrad", "view": "outcomes"},
        notice="Switch the pipeline to clean and look again at the two runs marked ×.",
        claims={
            "reference": ("In the reference pipeline CAGrad reaches the optimum from 3 of the 7 starts, and 2 of "
                          "those runs then turn NaN there."),
            "clean": ("In the clean pipeline no run turns NaN: the same 2 starts reach the optimum and stay."),
        },
        knobs=("pipe",)),
)

BY_SLUG = {s.slug: s for s in STEPS}


def get(slug: str) -> Step:
    if slug not in BY_SLUG:
        raise ValueError(f"lesson: unknown step {slug!r} (known: {', '.join(BY_SLUG)})")
    return BY_SLUG[slug]
