"""Every lever of docs/frontier.md in one picture: what each change did to test accuracy, seed by seed.

Each row is one change to a recipe, trained (or scored) on the same seeds as the recipe it
changed, so the dots are paired differences, in points of test accuracy (0.10 = ten of the
10,000 test images): one dot a seed, a bar at the mean. A lever that won has every dot right
of zero; one inside the seed-to-seed spread has dots on both sides.

The accuracies below are the ones the frontier page's tables print, copied from them: most of
those runs were trained on machines that are gone (the Zen 4 and Zen 5 sessions kept their
numbers, not their folders). Each row names the page's table, and its runs' commands are there.

    .venv/bin/python docs/levers.py docs/levers.png
"""
import sys

import numpy as onp

import gluon_resnet  # noqa: F401  (the package's matplotlib settings and thread count)
from gluon_resnet.plots import save_figure

# The recipes most levers were measured against, seed by seed (seeds 0, 1, 2, ...):
FAST21 = [0.9398, 0.9381, 0.9396]             # Zen 4: --preset fast --epochs 21 (fmnist_resnet8)
ERASE35 = [0.9451, 0.9442, 0.9439]            # Zen 5: erasing, weight decay 5e-4, 35 epochs
ERASE_BEST = [0.9458, 0.9460, 0.9454, 0.9453, 0.9432]   # Zen 5: erasing, weight decay 2e-4
BEST_ZEN5 = [0.9475, 0.9473, 0.9495, 0.9459, 0.9468]    # Zen 5: --preset best --no-whiten, mirror copies
BEST21_ZEN3 = [0.9447, 0.9425, 0.9460]        # Zen 3: --preset best --no-whiten --epochs 21, mirror copies
BEST_ZEN3 = [0.9461, 0.9461, 0.9470, 0.9462, 0.9469]          # Zen 3: --preset best --no-whiten, mirror copies
BEST_ZEN3_COPIES = [0.9468, 0.9463, 0.9485, 0.9485, 0.9480]   # the same nets with four shifted copies
BEST_XEON = [0.9471, 0.9459, 0.9472]          # Xeon: --preset best --no-whiten, mirror copies
BEST_XEON_COPIES = [0.9463, 0.9470, 0.9489]   # the same nets with four shifted copies (as best scores)

# (machine and the recipe the levers change, [(lever, its seeds' accuracies, the recipe's on the same seeds)])
LEVERS = [
    ("Zen 4, AVX-512: fmnist_resnet8, 21 epochs\n(--preset fast --epochs 21; The levers)", [
        ("label smoothing off", [0.9358, 0.9371, 0.9366], FAST21),
        ("mirror-image test copies off", [0.9371, 0.9345, 0.9374], FAST21),
        ("shifted test copies, net trained without crops", [0.9347, 0.9325, 0.9352], FAST21),
        ("two-pixel crops", [0.9350, 0.9338, 0.9341], FAST21),
        ("random erasing", [0.9409, 0.9394, 0.9393], FAST21),
        ("weight average (EMA 0.99)", [0.9388, 0.9387, 0.9396], FAST21),
        ("1.5x wider, half the epochs", [0.9387, 0.9388, 0.9400], FAST21),
        ("batch 256, lr 0.2", [0.9409, 0.9387, 0.9388], FAST21),
        ("full-resolution conv first (fmnist_resnet9)", [0.9439, 0.9417, 0.9382, 0.9433],
         FAST21 + [0.9396]),  # a fourth seed of each
    ]),
    ("Zen 5, AVX-512: fmnist_resnet9, 35 epochs\n(The levers on the Zen 5)", [
        ("random erasing (vs the plain net)", [0.9451, 0.9442, 0.9439], [0.9435, 0.9427, 0.9427]),
        ("erasing half the images (vs erase35)", [0.9442, 0.9439, 0.9434], ERASE35),
        ("label smoothing 0.2 (vs erase35)", [0.9451, 0.9442, 0.9435], ERASE35),
        ("weight decay 1e-3 (vs erase35's 5e-4)", [0.9436, 0.9437, 0.9444], ERASE35),
        ("weight decay 2e-4 (vs erase35's 5e-4)", [0.9458, 0.9460, 0.9454, 0.9453],
         ERASE35 + [0.9444]),
        ("CutMix instead of erasing", [0.9427, 0.9427, 0.9441], ERASE35),
        ("mixup instead of erasing", [0.9443, 0.9430, 0.9435], ERASE35),
        ("weight decay 3e-4 (vs erase-best's 2e-4)", [0.9446, 0.9430, 0.9456, 0.9441, 0.9417],
         ERASE_BEST),
        ("weight decay 1e-4 (vs erase-best's 2e-4)", [0.9441, 0.9448, 0.9448, 0.9449, 0.9441],
         ERASE_BEST),
        ("peak lr 0.2 (vs erase-best)", [0.9450, 0.9464, 0.9453], ERASE_BEST[:3]),
        ("SAM, twice the minutes (vs erase-best)", [0.9455, 0.9454], ERASE_BEST[:2]),
        ("BatchNorm re-estimated (vs erase-best)", [0.9456, 0.9455, 0.9447, 0.9422, 0.9418],
         ERASE_BEST),
        ("one-pixel crops on top of erasing", [0.9467, 0.9474, 0.9472, 0.9464, 0.9446],
         ERASE_BEST),
        ("one-pixel crops instead of erasing (best)", BEST_ZEN5, ERASE_BEST),
        ("crops instead of erasing, 70 epochs (long)", [0.9497, 0.9496, 0.9511, 0.9481, 0.9489],
         [0.9469, 0.9455, 0.9468, 0.9478, 0.9457]),
        ("two blocks a stage, 1.8x the minutes (17 ep.)", [0.9425, 0.9410, 0.9416], [0.9426, 0.9407, 0.9421]),
        ("SAM on the plain 17-epoch net", [0.9421, 0.9405, 0.9402], [0.9411, 0.9419, 0.9422]),
        ("whitened first layer, mirror copies (vs best a day before)",
         [0.9472, 0.9512, 0.9480, 0.9473, 0.9484], BEST_ZEN5),
        ("whitened first layer, four copies (same day)", [0.9495, 0.9499, 0.9502],
         [0.9480, 0.9478, 0.9496]),
    ]),
    ("Zen 3, AVX2: --preset best --no-whiten and its epochs\n(On a Zen 3, The levers on the Zen 3)", [
        ("one-pixel crops at 10 epochs (vs plain)", [0.9367, 0.9354, 0.9347], [0.9385, 0.9365, 0.9396]),
        ("one-pixel crops at 21 epochs (vs plain)", BEST21_ZEN3, [0.9443, 0.9410, 0.9419]),
        ("batch 64, lr 0.05 (21 epochs)", [0.9449, 0.9420, 0.9438], BEST21_ZEN3),
        ("progressive resizing, 20x20 first (~21 ep.)", [0.9432, 0.9437, 0.9431], BEST21_ZEN3),
        ("four one-pixel test copies (best)", BEST_ZEN3_COPIES, BEST_ZEN3),
        ("four one-pixel test copies (long)", [0.9528, 0.9504, 0.9514], [0.9505, 0.9498, 0.9493]),
        ("clean finish, mirror copies alone", [0.9466, 0.9466, 0.9473, 0.9476, 0.9473],
         BEST_ZEN3),
        ("clean finish, both with the four copies", [0.9491, 0.9473, 0.9477, 0.9468, 0.9475],
         BEST_ZEN3_COPIES),
        ("alternating flips (with the four copies)", [0.9483, 0.9460, 0.9470], BEST_ZEN3_COPIES[:3]),
        ("alternating flips, 21 epochs (four copies)", [0.9451, 0.9440], [0.9452, 0.9437]),
        ("two-pixel crops on long (four copies)", [0.9515, 0.9492], [0.9528, 0.9504]),
    ]),
    ("Xeon, AVX-512: --preset best --no-whiten\n(On an Intel Xeon)", [
        ("four one-pixel test copies (best)", BEST_XEON_COPIES, BEST_XEON),
        ("whitened, frozen first layer (four copies)", [0.9489, 0.9510, 0.9500], BEST_XEON_COPIES),
        ("whitened first layer, mirror copies alone", [0.9483, 0.9502, 0.9496], BEST_XEON),
        ("whitened, 26 epochs (four copies)", [0.9479, 0.9489], [0.9458, 0.9458]),
        ("whitened, 70 epochs (vs long on the Zen 3)", [0.9515, 0.9512, 0.9535], [0.9528, 0.9504, 0.9514]),
    ]),
]


def signed(x):
    """'+0.12', with no '-0.00' for a mean that rounds to zero."""
    return f"{round(float(x), 2) + 0.0:+.2f}"


def differences(lever, recipe):
    """Paired differences in points (hundredths of accuracy), one a seed."""
    if len(lever) != len(recipe):
        raise ValueError(f"{len(lever)} seeds against {len(recipe)}: the rows must pair seed by seed")
    return 100 * (onp.asarray(lever) - onp.asarray(recipe))


def draw(groups=LEVERS):
    import matplotlib.pyplot as plt
    rows = sum(len(levers) for _, levers in groups) + 2 * len(groups)
    fig, ax = plt.subplots(figsize=(8.2, 0.26 * rows + 0.8))
    y, ticks, labels = 0, [], []
    for title, levers in groups:
        ax.text(-0.63, y, title.split("\n")[0], fontweight="bold", va="center", ha="left", fontsize=8.5)
        y += 1.2
        for name, lever, recipe in levers:
            d = differences(lever, recipe)
            colour = "tab:green" if (d > 0).all() else "tab:red" if (d < 0).all() else "tab:gray"
            ax.scatter(d, [y] * len(d), s=14, color=colour, alpha=0.75, zorder=3)
            ax.plot([d.mean()] * 2, [y - 0.36, y + 0.36], color=colour, lw=2.2, zorder=4)
            ticks.append(y)
            labels.append(f"{name}  ({signed(d.mean())})")
            y += 1
        y += 0.8
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(ticks, labels, fontsize=7.5)
    ax.set_ylim(y - 0.5, -0.8)
    ax.set_xlim(-0.65, 0.65)
    ax.set_xlabel("test accuracy minus the changed recipe's, same seed, in points (0.10 = 10 test images)",
                  fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Every lever on the frontier page, seed by seed\n"
                 "a dot a seed, a bar the mean; green: all ahead, red: all behind, grey: both", fontsize=9)
    fig.tight_layout()
    return fig


def main(argv):
    if len(argv) != 1 or not argv[0].endswith(".png"):
        print("usage: python docs/levers.py OUT.png", file=sys.stderr)
        return 2
    save_figure(draw(), argv[0])
    for title, levers in LEVERS:
        print(title.replace("\n", " "))
        for name, lever, recipe in levers:
            d = differences(lever, recipe)
            print(f"  {name:48s} {signed(d.mean())}  ({', '.join(signed(x) for x in d)})")
    print(f"saved {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
