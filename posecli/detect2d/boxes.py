"""Boxes for single-shot detectors: SSD anchors, box/key-point decoding, IoU and (weighted)
non-maximum suppression. Pure numpy; shared by every detector (BlazePose's person detector now,
an HRNet person detector later).

Boxes are [x0, y0, x1, y1] (x right, y down) in whatever unit the caller uses (normalised input
coordinates for the decoder, frame pixels elsewhere).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["sigmoid", "ssd_anchors", "decode_detections", "iou", "iou_matrix", "nms",
           "weighted_nms", "points_box"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, float64."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def ssd_anchors(num_layers: int = 5, min_scale: float = 0.1484375, max_scale: float = 0.75,
                input_size: int = 224, anchor_offset: float = 0.5,
                strides: tuple[int, ...] = (8, 16, 32, 32, 32),
                aspect_ratios: tuple[float, ...] = (1.0,), fixed_anchor_size: bool = True,
                interpolated_scale_aspect_ratio: float = 1.0) -> np.ndarray:
    """SSD anchors as MediaPipe's SsdAnchorsCalculator lays them out.

    Consecutive layers with the same stride share one feature map; each location of it gets,
    for every layer of the group, one anchor per aspect ratio plus one of the interpolated scale.

    Returns:
        (N, 4) float64 [x_center, y_center, width, height], normalised to the input size
        (N = 2254 with the defaults: 28*28*2 + 14*14*2 + 7*7*6). With ``fixed_anchor_size``
        width = height = 1, so the box regression is in input pixels / input size.
    """
    def scale(i: int) -> float:
        if num_layers == 1:
            return (min_scale + max_scale) / 2
        return min_scale + (max_scale - min_scale) * i / (num_layers - 1)

    out: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < num_layers:
        whs: list[tuple[float, float]] = []
        last = layer
        while last < num_layers and strides[last] == strides[layer]:
            s = scale(last)
            for ar in aspect_ratios:
                whs.append((s * math.sqrt(ar), s / math.sqrt(ar)))
            if interpolated_scale_aspect_ratio > 0:
                s_next = 1.0 if last == num_layers - 1 else scale(last + 1)
                s_int = math.sqrt(s * s_next)
                r = interpolated_scale_aspect_ratio
                whs.append((s_int * math.sqrt(r), s_int / math.sqrt(r)))
            last += 1
        fm = math.ceil(input_size / strides[layer])
        for y in range(fm):
            for x in range(fm):
                cx, cy = (x + anchor_offset) / fm, (y + anchor_offset) / fm
                for w, h in whs:
                    out.append((cx, cy, 1.0, 1.0) if fixed_anchor_size else (cx, cy, w, h))
        layer = last
    return np.asarray(out, dtype=np.float64)


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
                      input_size: int = 224, score_clip: float = 100.0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode the detector's raw outputs against the anchors.

    Args:
        raw_boxes: (N, 4 + 2K) per anchor: box centre offset x, y, box width, height, then K key
            point offsets (x, y), all in input pixels (x before y).
        raw_scores: (N,) or (N, 1) logits.
        anchors: (N, 4) from :func:`ssd_anchors`.
    Returns:
        boxes (N, 4) [x_min, y_min, x_max, y_max], keypoints (N, K, 2) and scores (N,), boxes and
        key points normalised to the (letterboxed) input square, scores in [0, 1].
    """
    raw = np.asarray(raw_boxes, dtype=np.float64).reshape(len(anchors), -1)
    ax, ay, aw, ah = (anchors[:, i:i + 1] for i in range(4))
    cx = raw[:, 0:1] / input_size * aw + ax
    cy = raw[:, 1:2] / input_size * ah + ay
    w = raw[:, 2:3] / input_size * aw
    h = raw[:, 3:4] / input_size * ah
    boxes = np.concatenate([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kp = raw[:, 4:].reshape(len(anchors), -1, 2) / input_size
    kp = kp * np.stack([aw, ah], axis=-1) + np.stack([ax, ay], axis=-1)
    scores = sigmoid(np.clip(np.asarray(raw_scores, dtype=np.float64).reshape(-1),
                              -score_clip, score_clip))
    return boxes, kp, scores


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box (4,) with boxes (M, 4), both [x0, y0, x1, y1] -> (M,)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area(np.asarray(box, dtype=np.float64)) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Plain (hard) non-maximum suppression.

    Args:
        boxes: (N, 4) [x0, y0, x1, y1]; scores: (N,).
    Returns:
        (M,) int indices of the kept boxes, highest score first.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        order = rest[iou(boxes[i], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, extra: np.ndarray | None,
                 iou_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted NMS (MediaPipe's WEIGHTED algorithm).

    The best remaining box takes every remaining box overlapping it by IoU > ``iou_threshold``;
    the cluster is replaced by the score-weighted mean of its boxes (and of ``extra``, e.g. key
    points) and keeps the best score.

    Args:
        boxes: (N, 4); scores: (N,); extra: (N, ...) or None.
    Returns:
        boxes (M, 4), scores (M,), extra (M, ...) (empty (M, 0) when ``extra`` is None), best
        score first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    ex = (np.zeros((len(boxes), 0)) if extra is None else np.asarray(extra, dtype=np.float64))
    ex = ex.reshape(len(boxes), int(np.prod(ex.shape[1:])))  # (also when there are no boxes)
    order = np.argsort(-scores, kind="stable")
    out_b, out_s, out_e = [], [], []
    while order.size:
        best = order[0]
        members = order[(iou(boxes[best], boxes[order]) > iou_threshold) | (order == best)]
        w = scores[members][:, None]
        out_b.append((boxes[members] * w).sum(0) / w.sum())
        out_e.append((ex[members] * w).sum(0) / w.sum())
        out_s.append(scores[best])
        order = order[~np.isin(order, members)]
    shape = (-1,) + (np.asarray(extra).shape[1:] if extra is not None else (0,))
    return (np.asarray(out_b).reshape(-1, 4), np.asarray(out_s),
            np.asarray(out_e).reshape(shape))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union: boxes a (N, 4) and b (M, 4) -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    if not len(a):
        return np.zeros((0, len(np.reshape(b, (-1, 4)))))
    return np.stack([iou(x, b) for x in a])


def points_box(xy: np.ndarray, weight: np.ndarray | None = None, min_weight: float = 0.0
               ) -> np.ndarray:
    """Tight box [x0, y0, x1, y1] around the points (K, 2) whose weight (K,) exceeds
    ``min_weight`` (all finite points when ``weight`` is None); NaNs when none qualifies."""
    xy = np.asarray(xy, dtype=np.float64)
    ok = np.isfinite(xy).all(1)
    if weight is not None:
        ok &= np.asarray(weight) > min_weight
    if not ok.any():
        return np.full(4, np.nan)
    return np.concatenate([xy[ok].min(0), xy[ok].max(0)])
