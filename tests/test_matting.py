"""core.matting on synthetic studio photos: openings become see-through, glass partly, edges lose the backdrop."""
from __future__ import annotations

import numpy as np
import pytest

from core.matting import Matting, backdrop_colour, components, see_through

WHITE = (255, 255, 255)


def grid_chair(gap: int = 8, bar: int = 4, colour=(60, 40, 30), backdrop=WHITE) -> tuple[np.ndarray, np.ndarray]:
    """A backdrop photo with a grid of bars (a chair back with gaps) and the model's mask: one solid rectangle."""
    rgb = np.zeros((100, 120, 3), np.uint8)
    rgb[:] = backdrop
    x0, y0, x1, y1 = 20, 20, 100, 80
    for y in range(y0, y1, gap + bar):
        rgb[y:y + bar, x0:x1] = colour
    for x in range(x0, x1, gap + bar):
        rgb[y0:y1, x:x + bar] = colour
    rgb[y1 - bar:y1, x0:x1] = colour
    rgb[y0:y1, x1 - bar:x1] = colour
    alpha = np.zeros((100, 120), np.uint8)
    alpha[y0:y1, x0:x1] = 255  # the model fills the gaps in
    return rgb, alpha


@pytest.mark.parametrize("backdrop, colour", [
    (WHITE, (60, 40, 30)),          # dark wood on white
    ((240, 240, 238), (30, 30, 30)),  # an off-white backdrop
    (WHITE, (200, 200, 205)),       # light grey metal bars on white
])
def test_grid_gaps_become_transparent_and_bars_stay(backdrop, colour):
    rgb, alpha = grid_chair(colour=colour, backdrop=backdrop)
    out_rgb, out_a = see_through(rgb, alpha)
    # Gap centres (between the bars) and the bars themselves.
    gaps = [(20 + 4 + 4 + k * 12, 20 + 4 + 4 + j * 12) for k in range(4) for j in range(6)]
    bars = [(21 + k * 12, 40) for k in range(5)]
    assert all(out_a[y, x] == 0 for y, x in gaps)
    assert all(out_a[y, x] == 255 for y, x in bars)
    assert tuple(out_rgb[21, 40]) == colour
    assert (out_a[:, :10] == 0).all()  # outside stays outside


def test_small_blurred_weave_holes_open():
    """A wicker weave: 1-2 px holes whose pixels are blurred a little off the backdrop colour still open."""
    rgb = np.full((80, 80, 3), 255, np.uint8)
    rgb[20:60, 20:60] = 50                      # dark strands
    holes = [(y, x) for y in range(24, 56, 5) for x in range(24, 56, 4)]
    for y, x in holes:
        rgb[y:y + 3, x:x + 2] = 243             # 2×3 holes, 12 levels off white: no pixel is quite the backdrop
    rgb[40:43, 57] = 250                        # a 1-px slit
    alpha = np.zeros((80, 80), np.uint8)
    alpha[20:60, 20:60] = 255
    _, out_a = see_through(rgb, alpha)
    assert max(out_a[y + 1, x] for y, x in holes) <= 40
    assert out_a[41, 57] <= 40
    assert out_a[22, 22] == 255 and out_a[30, 27] == 255  # strands stay


def test_glass_gets_partial_alpha_by_closeness_to_the_backdrop():
    rgb = np.full((80, 80, 3), 255, np.uint8)
    rgb[20:60, 20:60] = 225          # the body of a clear glass: slightly darker than the backdrop
    rgb[20:60, 20:23] = 90           # its rim: dark
    rgb[30:50, 35:45] = 255          # backdrop seen straight through it
    alpha = np.zeros((80, 80), np.uint8)
    alpha[20:60, 20:60] = 255
    _, glass_a = see_through(rgb, alpha, glass=True)
    _, solid_a = see_through(rgb, alpha, glass=False)
    body = int(glass_a[25, 30])
    assert 40 <= body <= 160, body                      # partly see-through
    assert glass_a[40, 40] == 0                         # the clear middle shows the room
    assert glass_a[40, 21] == 255                       # the dark rim stays opaque
    assert solid_a[25, 30] == 255                       # not glass: the same grey is a solid product


def test_edge_colour_is_decontaminated():
    """A half-covered edge pixel (50% dark product over white) comes back dark, not as a white fringe."""
    rgb = np.full((60, 60, 3), 255, np.uint8)
    rgb[10:50, 10:30] = (40, 40, 40)
    rgb[10:50, 30] = (148, 148, 148)  # the anti-aliased edge column: about half product, half backdrop
    alpha = np.zeros((60, 60), np.uint8)
    alpha[10:50, 10:32] = 255        # the model's mask overshoots into the backdrop
    out_rgb, out_a = see_through(rgb, alpha)
    assert 90 <= out_a[30, 30] <= 180
    assert out_rgb[30, 30].max() < 80   # the backdrop's share removed: the product's dark colour
    assert out_a[30, 31] == 0           # the overshoot is backdrop


def test_smooth_highlight_on_a_white_product_stays_opaque():
    """A glossy white bowl: a pure-white highlight inside a near-white surface is not an opening."""
    yy, xx = np.mgrid[0:100, 0:100]
    r = np.hypot(yy - 50, xx - 50)
    shade = np.clip(255 - (r - 8) * 1.2, 215, 255)  # 255 in the middle, fading to 215 at the rim
    rgb = np.full((100, 100, 3), 255, np.uint8)
    inside = r < 40
    rgb[inside] = shade[inside, None].astype(np.uint8)
    rgb[(r >= 38) & (r < 40)] = 150                    # a darker rim
    alpha = np.where(inside, 255, 0).astype(np.uint8)
    _, out_a = see_through(rgb, alpha)
    assert out_a[50, 50] == 255


def test_not_a_studio_photo_is_left_alone():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    alpha = np.full((50, 50), 255, np.uint8)
    assert backdrop_colour(rgb) is None
    out_rgb, out_a = see_through(rgb, alpha)
    assert (out_a == alpha).all() and (out_rgb == rgb).all()


def test_components_labels_8_connected_regions():
    mask = np.zeros((6, 8), bool)
    mask[0:2, 0:2] = True
    mask[2, 2] = True           # diagonal neighbour: same component
    mask[4:6, 5:8] = True
    lab = components(mask)
    assert lab[0, 0] == lab[2, 2] != lab[5, 7]
    assert len(np.unique(lab[mask])) == 2 and (lab[~mask] == -1).all()


def test_settings_change_the_ramp():
    rgb, alpha = grid_chair(colour=(200, 200, 205))
    wide = see_through(rgb, alpha, settings=Matting(edge_ramp=120))[1]
    narrow = see_through(rgb, alpha, settings=Matting(edge_ramp=30))[1]
    assert wide[21, 40] < narrow[21, 40] == 255  # a light bar is partly see-through with a long ramp
