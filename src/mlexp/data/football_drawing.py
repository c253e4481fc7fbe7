"""Drawing one broadcast-like football frame: the field, players, markings, score bug and the ball.

What makes real broadcast footage hard is drawn on purpose: brown and white helmets, gloves, numbers and
a midfield logo that look like a ball, motion blur, players covering the ball, balls crossing the frame
edge, low contrast on far cameras. `draw_frame` returns the frame, its ball's box and its characteristics;
football_frames.generate writes them as a Ground Truth manifest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# each frame with a ball takes one value of each; frames without one carry the camera's two and "ball: none"
ATTRIBUTES = {
    "occlusion": ("high", "low"),
    "size": ("small", "large"),
    "aspect_ratio": ("tall", "wide"),
    "camera_angle": ("endzone", "sideline"),
    "camera_distance": ("far", "near"),
    "contrast": ("high", "low"),
}
PLAY_ATTRIBUTES = ("camera_angle", "camera_distance")
NO_BALL = ("ball", "none")
# a ball in the lower 35 % of the length range is "small" (below ~22 px at 1280 with the default 1-3 %)
SMALL_BALL = 0.35
BALL_BROWN = np.array([122.0, 66.0, 34.0])
# jerseys and helmets: white and brown ones are the ball's look-alikes
TEAM_COLOURS = [(235, 235, 235), (150, 25, 35), (20, 40, 110), (240, 170, 30), (25, 90, 40), (105, 60, 35)]
SKIN = [(95, 60, 40), (150, 105, 75), (200, 160, 130)]
TEAMS = ("NYG", "DAL", "SEA", "GB", "KC", "BUF", "CLE", "DEN", "LAR", "NE")

RGB = tuple[int, int, int]
Box = tuple[float, float, float, float]  # left, top, width, height in pixels


def _rgb(colour: np.ndarray | tuple[float, ...]) -> RGB:
    r, g, b = (int(np.clip(c, 0, 255)) for c in colour)
    return r, g, b


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


@dataclass
class Play:
    """What the frames of one play share: the camera, the field, the players, the ball's path."""

    camera_angle: str
    camera_distance: str
    grass: float
    yard_offset: float
    yard_spacing: float
    lean: float
    crowd: np.ndarray  # low-resolution stand colours, scaled up
    players: list[tuple[float, float, float, float, float, RGB, RGB, RGB]]  # x, y, vx, vy, height, jersey...
    ball_start: tuple[float, float]
    ball_velocity: tuple[float, float]
    ball_length: float
    small_below: float  # a ball shorter than this (pixels) is "small"
    ball_angle: float
    teams: tuple[str, str]
    score: tuple[int, int]
    noise_seed: int
    # drawn at the play's first frame: what every frame of the play shares
    background: np.ndarray | None = None
    noise: np.ndarray | None = None


def new_play(rng: np.random.Generator, width: int, height: int, ball_length: tuple[float, float]) -> Play:
    angle = "endzone" if rng.random() < 0.35 else "sideline"
    distance = "far" if rng.random() < 0.5 else "near"
    low, high = ball_length
    # a far camera sees a small ball: its lengths come from the lower part of the range
    split = low + 0.45 * (high - low)
    length = (
        rng.uniform(low, split + 0.1 * (high - low))
        if distance == "far"
        else rng.uniform(split - 0.15 * (high - low), high)
    )
    n_players = int(rng.integers(8, 17) if distance == "far" else rng.integers(5, 11))
    tall = (0.10, 0.16) if distance == "far" else (0.2, 0.32)
    players = []
    for _ in range(n_players):
        x, y = rng.uniform(-0.05, 1.05) * width, rng.uniform(0.25, 1.0) * height
        vx, vy = rng.normal(0, 0.006 * width, size=2)
        team = int(rng.integers(2))
        jersey = TEAM_COLOURS[int(rng.integers(len(TEAM_COLOURS)))] if team else (235, 235, 235)
        helmet = TEAM_COLOURS[-1] if rng.random() < 0.3 else TEAM_COLOURS[int(rng.integers(len(TEAM_COLOURS)))]
        skin = SKIN[int(rng.integers(len(SKIN)))]
        players.append((x, y, vx, vy, rng.uniform(*tall) * height, jersey, helmet, skin))
    speed = rng.uniform(0.004, 0.02) * width
    heading = rng.uniform(0, 2 * math.pi)
    start = (float(rng.uniform(0.1, 0.9) * width), float(rng.uniform(0.25, 0.9) * height))
    if rng.random() < 0.2:  # a play along the frame's edge: its ball crosses it, its box is clipped
        near = rng.uniform(-0.3, 0.4) * length * width
        start = (near if rng.random() < 0.5 else width - near, start[1])
        heading = math.pi / 2 + rng.uniform(-0.15, 0.15)  # along the edge, up or down
    crowd = rng.integers(20, 230, size=(max(2, height // 24), max(2, width // 24), 3)).astype(np.uint8)
    return Play(
        camera_angle=angle,
        camera_distance=distance,
        grass=float(rng.uniform(95, 150)),
        yard_offset=float(rng.uniform(0, 1)),
        yard_spacing=float(rng.uniform(0.14, 0.22) if distance == "far" else rng.uniform(0.25, 0.4)),
        lean=float(rng.uniform(-0.25, 0.25)),
        crowd=crowd,
        players=players,
        ball_start=start,
        ball_velocity=(speed * math.cos(heading), speed * math.sin(heading)),
        ball_length=float(length * width),
        small_below=float((low + SMALL_BALL * (high - low)) * width),
        ball_angle=math.degrees(heading),
        teams=(TEAMS[int(rng.integers(len(TEAMS)))], TEAMS[int(rng.integers(len(TEAMS)))]),
        score=(int(rng.integers(0, 35)), int(rng.integers(0, 35))),
        noise_seed=int(rng.integers(2**31)),
    )


def _field(play: Play, width: int, height: int) -> np.ndarray:
    """Grass in mown stripes, lit unevenly, the stands at the top when seen from the sideline (uint8 HWC)."""
    base = np.array([play.grass * 0.45, play.grass, play.grass * 0.35], dtype=np.float32)
    xs = np.arange(width, dtype=np.float32) / width
    ys = np.arange(height, dtype=np.float32) / height
    if play.camera_angle == "sideline":
        stripes = 1.0 + 0.06 * np.sign(np.sin(xs * math.pi / play.yard_spacing * 2))
        shade = np.outer(1.0 + 0.1 * (ys - 0.5), stripes)
    else:  # from the end zone stripes run across and crowd towards the far side
        stripes = 1.0 + 0.06 * np.sign(np.sin(ys**1.4 * math.pi / play.yard_spacing * 2))
        shade = np.outer(stripes, 1.0 + 0.08 * (xs - 0.5))
    pixels = shade[..., None] * base
    stands = int(height * (0.18 if play.camera_distance == "far" else 0.08))
    if play.camera_angle == "sideline" and stands > 0:
        crowd = np.asarray(
            Image.fromarray(play.crowd).resize((width, stands), Image.Resampling.NEAREST), dtype=np.float32
        )
        pixels[:stands] = crowd * 0.7
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _pan_blur(pixels: np.ndarray, shift: int) -> np.ndarray:
    """A horizontal box blur of 2·shift+1 pixels (a fast camera pan), by running sums."""
    padded = np.pad(pixels, ((0, 0), (shift + 1, shift), (0, 0)), mode="edge")
    sums = np.cumsum(padded, axis=1, dtype=np.float32)
    return (sums[:, 2 * shift + 1 :] - sums[:, : -2 * shift - 1]) / (2 * shift + 1)


def _markings(draw: ImageDraw.ImageDraw, play: Play, width: int, height: int, frame: int) -> None:
    """Yard lines, hash marks, yard numbers and the midfield logo: white and brown look-alikes."""
    line_width = max(1, width // 320)
    spacing = play.yard_spacing * width
    offset = (play.yard_offset - frame * 0.004 / play.yard_spacing) % 1.0 * spacing
    font = _font(int(height * (0.05 if play.camera_distance == "far" else 0.09)))
    for k in range(-2, int(width / spacing) + 3):
        if play.camera_angle == "sideline":
            x = offset + k * spacing
            top, bottom = (x - play.lean * width / 2, height * 0.1), (x + play.lean * width / 2, height)
            draw.line([top, bottom], fill=(230, 235, 230), width=line_width)
            for j in range(1, 4):  # hash marks between the yard lines
                hx = x + spacing / 4 * j
                draw.line([(hx, height * 0.55), (hx, height * 0.57)], fill=(225, 230, 225), width=line_width)
            number = str(10 * (1 + (k + int(play.yard_offset * 10)) % 5))
            draw.text((x + spacing * 0.1, height * 0.82), number, fill=(235, 235, 230), font=font)
        elif k >= 0:  # seen from the end zone the lines run across and crowd towards the far side
            y = height * ((offset / spacing + k) / max(2.0, width / spacing)) ** 1.35
            draw.line([(0, y), (width, y)], fill=(230, 235, 230), width=line_width)
    if play.yard_offset < 0.35:  # midfield: the home team's logo, brown and white
        cx, cy = width * (0.3 + play.yard_offset), height * 0.6
        rx, ry = width * 0.06, height * 0.05
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=(120, 70, 40), outline=(235, 235, 230), width=3)
        draw.text((cx - rx * 0.5, cy - ry * 0.6), play.teams[0], fill=(235, 235, 230), font=font)


def _player(draw: ImageDraw.ImageDraw, x: float, y: float, tall: float, jersey: RGB, helmet: RGB, skin: RGB) -> None:
    w = tall * 0.38
    limb = max(1, int(tall * 0.06))
    draw.line([(x - w * 0.2, y + tall * 0.2), (x - w * 0.3, y + tall * 0.5)], fill=(30, 30, 30), width=limb)
    draw.line([(x + w * 0.2, y + tall * 0.2), (x + w * 0.35, y + tall * 0.5)], fill=(30, 30, 30), width=limb)
    draw.rectangle([x - w / 2, y - tall * 0.05, x + w / 2, y + tall * 0.22], fill=(220, 220, 205))
    draw.ellipse([x - w / 2, y - tall * 0.32, x + w / 2, y + 0.02 * tall], fill=jersey)
    draw.line([(x - w / 2, y - tall * 0.25), (x - w * 0.8, y - tall * 0.05)], fill=skin, width=limb)  # arms
    draw.line([(x + w / 2, y - tall * 0.25), (x + w * 0.8, y - tall * 0.05)], fill=skin, width=limb)
    draw.ellipse([x - w * 0.25, y - tall * 0.5, x + w * 0.25, y - tall * 0.3], fill=helmet)
    number = (235, 235, 235) if jersey != (235, 235, 235) else (30, 30, 30)
    draw.rectangle([x - w * 0.12, y - tall * 0.24, x + w * 0.12, y - tall * 0.12], fill=number)


def _ball_patch(
    rng: np.random.Generator, length: float, angle: float, brown: np.ndarray, laces: bool, blur: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The ball drawn on its own RGBA patch, blurred along its motion; and its outline (patch pixels)."""
    girth = length / rng.uniform(1.55, 1.8)
    side = int(math.ceil(length + 2 * max(abs(blur[0]), abs(blur[1])) + 6))
    centre = side / 2
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    ex, ey = length / 2 * np.cos(t), girth / 2 * np.sin(t)
    outline = np.column_stack([centre + ex * cos - ey * sin, centre + ex * sin + ey * cos])
    patch = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(patch)
    draw.polygon([tuple(p) for p in outline], fill=(*_rgb(brown), 255))
    if laces:
        half = length * 0.18
        ends = [(centre - half * cos, centre - half * sin), (centre + half * cos, centre + half * sin)]
        draw.line(ends, fill=(240, 240, 235, 255), width=max(1, int(length / 14)))
    pixels = np.asarray(patch, dtype=np.float32)
    steps = int(max(abs(blur[0]), abs(blur[1])))
    if steps >= 1:  # motion blur: the mean of copies shifted along the motion
        shifted = [
            np.roll(pixels, (int(round(blur[1] * (s / steps - 0.5))), int(round(blur[0] * (s / steps - 0.5)))), (0, 1))
            for s in range(steps + 1)
        ]
        pixels = np.mean(shifted, axis=0)
    return pixels, outline


def _paste(image: np.ndarray, patch: np.ndarray, left: int, top: int, mix: float) -> None:
    """Alpha-composite an RGBA patch into the frame in place (mix < 1 lets the grass show through)."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + patch.shape[1], w), min(top + patch.shape[0], h)
    if x0 >= x1 or y0 >= y1:
        return
    part = patch[y0 - top : y1 - top, x0 - left : x1 - left]
    alpha = part[..., 3:4] / 255.0
    region = image[y0:y1, x0:x1]
    blended = mix * part[..., :3] + (1 - mix) * region
    image[y0:y1, x0:x1] = alpha * blended + (1 - alpha) * region


def _score_bug(draw: ImageDraw.ImageDraw, play: Play, width: int, height: int, frame: int) -> None:
    """The broadcast's score graphic along the bottom: team names, score, clock, down and distance."""
    top, bottom = height * 0.88, height * 0.96
    draw.rectangle([width * 0.18, top, width * 0.82, bottom], fill=(18, 22, 40))
    draw.rectangle([width * 0.18, top, width * 0.24, bottom], fill=(120, 70, 40))  # brown team tile
    font = _font(int((bottom - top) * 0.7))
    seconds = max(0, 900 - 37 * play.score[0] - frame)
    text = (
        f"{play.teams[0]} {play.score[0]}   {play.teams[1]} {play.score[1]}   "
        f"2nd {seconds // 60}:{seconds % 60:02d}   3rd & {1 + play.score[1] % 10}"
    )
    draw.text((width * 0.25, top + (bottom - top) * 0.1), text, fill=(240, 240, 240), font=font)


def draw_frame(
    play: Play, rng: np.random.Generator, width: int, height: int, frame: int, ball: bool
) -> tuple[Image.Image, list[Box], dict[str, str]]:
    """One frame of a play, its ball's box (clipped to the image; none without a ball) and its characteristics."""
    if play.background is None:  # the grass and stands and the sensor's noise pattern, once per play
        play.background = _field(play, width, height)
        play.noise = np.random.default_rng(play.noise_seed).standard_normal((height, width, 1), dtype=np.float32)
    image = Image.fromarray(play.background)
    draw = ImageDraw.Draw(image)
    _markings(draw, play, width, height, frame)
    moved = []
    for x, y, vx, vy, tall, jersey, helmet, skin in play.players:
        px, py = x + vx * frame, y + vy * frame
        depth = 0.6 + 0.5 * py / height if play.camera_angle == "endzone" else 1.0
        moved.append((px, py, tall * depth, jersey, helmet, skin))
    for px, py, tall, jersey, helmet, skin in sorted(moved, key=lambda p: p[1]):
        _player(draw, px, py, tall, jersey, helmet, skin)
    attributes = {name: getattr(play, name) for name in PLAY_ATTRIBUTES}
    pixels = np.array(image, dtype=np.float32)
    boxes: list[Box] = []
    if ball:
        boxes, ball_attributes = _draw_ball(play, rng, pixels, width, height, frame)
        attributes.update(ball_attributes)
    else:
        attributes[NO_BALL[0]] = NO_BALL[1]
    if rng.random() < 0.15:  # a fast camera pan blurs the whole frame
        pixels = _pan_blur(pixels, int(rng.integers(2, max(3, width // 160))))
    assert play.noise is not None
    pixels += play.noise * float(rng.uniform(2, 6))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    _score_bug(ImageDraw.Draw(image), play, width, height, frame)
    return image, boxes, attributes


def _occluder(pixels: np.ndarray, region: tuple[float, float, float, float], colour: RGB) -> None:
    """An arm or a body over `region` (left, top, right, bottom): rounded, with a darker edge, drawn in place."""
    height, width = pixels.shape[:2]
    left, top = max(int(region[0]) - 2, 0), max(int(region[1]) - 2, 0)
    right, bottom = min(int(math.ceil(region[2])) + 2, width), min(int(math.ceil(region[3])) + 2, height)
    if right <= left or bottom <= top:
        return
    patch = Image.fromarray(np.clip(pixels[top:bottom, left:right], 0, 255).astype(np.uint8))
    box = [region[0] - left, region[1] - top, region[2] - left, region[3] - top]
    radius = max(1, int(min(region[2] - region[0], region[3] - region[1]) / 2))
    edge = _rgb(np.array(colour) * 0.6)
    ImageDraw.Draw(patch).rounded_rectangle(box, radius=radius, fill=colour, outline=edge, width=1)
    pixels[top:bottom, left:right] = np.asarray(patch, dtype=np.float32)


def _bounce(value: float, low: float, high: float) -> float:
    """`value` folded into [low, high] as a ball bouncing between two walls."""
    span = high - low
    t = (value - low) % (2 * span)
    return low + (t if t <= span else 2 * span - t)


def _draw_ball(
    play: Play, rng: np.random.Generator, pixels: np.ndarray, width: int, height: int, frame: int
) -> tuple[list[Box], dict[str, str]]:
    """Draw the play's ball at this frame (blurred, maybe covered, maybe crossing the edge): its box and traits."""
    length = play.ball_length * rng.uniform(0.9, 1.1)
    # the ball's path bounces inside a range a little larger than the frame (above the score bug), so it
    # sometimes crosses the edge and its box is clipped
    cx = _bounce(play.ball_start[0] + play.ball_velocity[0] * frame, -0.3 * length, width + 0.3 * length)
    cy = _bounce(play.ball_start[1] + play.ball_velocity[1] * frame, -0.3 * length, height * 0.86)
    angle = play.ball_angle + rng.normal(0, 25)
    far = play.camera_distance == "far"
    low_contrast = rng.random() < (0.6 if far else 0.25)
    background = pixels[int(np.clip(cy, 0, height - 1)), int(np.clip(cx, 0, width - 1))]
    brown = BALL_BROWN * rng.uniform(0.8, 1.15)
    if low_contrast:  # in shadow or against a brown helmet: the ball takes the colours around it
        brown = 0.45 * brown + 0.55 * background
    speed = rng.uniform(0.3, 1.0)
    blur = (play.ball_velocity[0] * 0.25 * speed, play.ball_velocity[1] * 0.25 * speed)
    patch, outline = _ball_patch(rng, length, angle, brown, not low_contrast and length >= 12, blur)
    left, top = int(round(cx - patch.shape[1] / 2)), int(round(cy - patch.shape[0] / 2))
    _paste(pixels, patch, left, top, 0.85 if low_contrast else 1.0)
    x0, y0 = outline.min(axis=0) + (left, top)
    x1, y1 = outline.max(axis=0) + (left, top)
    occluded = rng.random() < 0.3
    if occluded:  # an arm or a body across 35-65 % of the ball
        colour = SKIN[int(rng.integers(len(SKIN)))] if rng.random() < 0.5 else TEAM_COLOURS[int(rng.integers(3))]
        cover = rng.uniform(0.35, 0.65)
        reach = length * rng.uniform(0.6, 1.5)
        if x1 - x0 >= y1 - y0:
            a, b = (x0 - reach, x0 + cover * (x1 - x0)) if rng.random() < 0.5 else (x1 - cover * (x1 - x0), x1 + reach)
            region = (a, y0 - 3, b, y1 + 3)
        else:
            a, b = (y0 - reach, y0 + cover * (y1 - y0)) if rng.random() < 0.5 else (y1 - cover * (y1 - y0), y1 + reach)
            region = (x0 - 3, a, x1 + 3, b)
        _occluder(pixels, region, colour)
    # the labeller boxes the whole ball, clipped to the visible frame
    left_px, top_px = math.floor(max(x0, 0.0)), math.floor(max(y0, 0.0))
    right_px, bottom_px = math.ceil(min(x1, float(width))), math.ceil(min(y1, float(height)))
    visible = right_px - left_px >= 2 and bottom_px - top_px >= 2
    boxes = [(float(left_px), float(top_px), float(right_px - left_px), float(bottom_px - top_px))] if visible else []
    attributes = {
        "occlusion": "high" if occluded else "low",
        "size": "small" if length < play.small_below else "large",
        "aspect_ratio": "tall" if bottom_px - top_px > right_px - left_px else "wide",
        "contrast": "low" if low_contrast else "high",
    }
    return boxes, attributes
