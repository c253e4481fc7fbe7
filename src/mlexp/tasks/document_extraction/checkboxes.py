"""Check boxes found in the page image by the project's own layout code (no OCR library detects them).

A check box is a closed square outline about the height of a text line; it is SELECTED when
ink fills enough of its inside (a tick, a cross or shading). Found on a binarised page with
OpenCV contours, so it works the same on every engine's page.
"""

from __future__ import annotations

import cv2
import numpy as np

from mlexp.tasks.document_extraction.structure import SelectionElement


def find(
    image: np.ndarray, text_height: float, fill_threshold: float, min_side: float = 0.6, max_side: float = 2.2
) -> list[SelectionElement]:
    """Square outlines of side min_side–max_side × text_height, their state by the ink inside them."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    # a median filter removes scan specks first: one touching an outline breaks its square contour
    gray = cv2.medianBlur(gray, 3)
    # adaptive threshold: uneven lighting leaves a global threshold either blind in the dark corner or flooded
    ink = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 31, 15)
    contours, hierarchy = cv2.findContours(ink, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    found: list[SelectionElement] = []
    if hierarchy is None:
        return found
    for index, contour in enumerate(contours):
        # an outline has a hole: the inner contour is its child (RETR_CCOMP's two levels)
        if hierarchy[0][index][2] < 0:
            continue
        x, y, w, h = cv2.boundingRect(contour)
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if not (min_side * text_height <= max(rw, rh) <= max_side * text_height and 0.8 <= rw / max(rh, 1) <= 1.25):
            continue
        polygon = cv2.approxPolyDP(contour, 0.08 * cv2.arcLength(contour, True), True)
        if len(polygon) != 4 or cv2.contourArea(contour) < 0.75 * rw * rh:
            continue
        # a skewed scan tilts the box: read it upright, rotated about its centre by the rectangle's angle
        if angle > 45:
            angle -= 90
        turn = np.asarray(cv2.getRotationMatrix2D((cx, cy), angle, 1.0), dtype=np.float64)
        turn[:, 2] += np.array([rw / 2 - cx, rh / 2 - cy])
        box = cv2.warpAffine(ink, turn, (max(1, round(rw)), max(1, round(rh)))) > 127
        # an outline inks its whole border, corners included; letters with holes (o, 0, D) leave corners blank
        # the ring is about one stroke wide: a box's line does not thicken with its size (3 px on a 37 px box)
        ring = max(1, round(0.06 * min(rw, rh)))
        border = np.concatenate(
            [box[:ring].ravel(), box[-ring:].ravel(), box[:, :ring].ravel(), box[:, -ring:].ravel()]
        )
        if border.mean() < 0.7:
            continue
        inset = max(2, round(0.2 * min(rw, rh)))
        inside = box[inset:-inset, inset:-inset]
        filled = float(inside.mean()) if inside.size else 0.0
        state = "SELECTED" if filled >= fill_threshold else "NOT_SELECTED"
        confidence = min(1.0, abs(filled - fill_threshold) / max(fill_threshold, 1e-6))
        found.append(SelectionElement([float(x), float(y), float(x + w), float(y + h)], state, "", confidence))
    return _outermost(found)


def _outermost(elements: list[SelectionElement]) -> list[SelectionElement]:
    """Drop a square inside another (a thick outline's inner edge, or the X's own triangles)."""
    kept = []
    for e in elements:
        inside = any(
            o is not e
            and o.box[0] <= e.box[0]
            and o.box[1] <= e.box[1]
            and o.box[2] >= e.box[2]
            and o.box[3] >= e.box[3]
            for o in elements
        )
        if not inside:
            kept.append(e)
    return kept
