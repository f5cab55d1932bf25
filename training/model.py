"""Segmentation models: a MobileNetV2 encoder with a fast light decoder (default) or the original pix2pix U-Net decoder.

Both take raw RGB 0..255 floats (normalisation to MobileNetV2's [-1, 1] is the model's first layer) and return
per-pixel class logits at the input resolution (NHWC).
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DECODERS = ("fast", "pix2pix")
CLASS_POOLS = ("global", "masked", "multilevel")

# Encoder taps, from fine to coarse. The fast model stops at stride 16 (block_13_expand_relu): blocks 13-16 and
# Conv_1 hold most of MobileNetV2's weights (~1.7 M of 2.26 M) and would not fit the 4 MB fp16 budget. Its skips are
# the narrow bottleneck outputs (16/24/32 channels), not the 96-192-channel expansions the pix2pix decoder taps, so
# the decoder's high-resolution convolutions stay cheap.
FAST_SKIPS = ("expanded_conv_project_BN", "block_2_add", "block_5_add")  # strides 2, 4, 8
FAST_DEEP = "block_13_expand_relu"  # stride 16, 576 channels: the mask decoder's input
# The class decision needs ImageNet's semantic features: blocks 13-15 run at stride 32 (cheap: ~22 M MACs at 160²)
# and add ~1 M parameters, still well inside the 4 MB fp16 budget (Conv_1's 410 k would not fit).
FAST_CLASS = "block_16_expand_relu"  # stride 32, 960 channels
# The original: the TensorFlow segmentation tutorial's taps and up-stack.
PIX2PIX_TAPS = ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu",
                "block_16_project")
PIX2PIX_FILTERS = (512, 256, 128, 64)


@dataclass
class ModelConfig:
    """What `build_model` builds."""

    input_size: int = 160
    classes: int = 10
    alpha: float = 1.0
    decoder: str = "fast"
    encoder_weights: str | Path | None = None  # a local .h5, "imagenet" (Keras download) or None (random init)
    width: int = 96  # fast decoder: channels at stride 16; halves at each upsampling step (min 24)
    class_pool: str = "global"  # fast decoder: average the class features over the whole photo or its foreground,
    # or ("multilevel") the stride-16 and stride-32 features' photo averages side by side


def check_input_size(input_size: int) -> None:
    """Raise ValueError unless the input size suits MobileNetV2's stride 32."""
    if input_size < 32 or input_size % 32:
        raise ValueError(f"input size must be a multiple of 32 and at least 32, got {input_size}")


def _weights_arg(encoder_weights: str | Path | None) -> str | None:
    """Validate the encoder weights argument; a missing local file is a clear error, not a silent download."""
    if encoder_weights is None or str(encoder_weights) == "imagenet":
        return None if encoder_weights is None else "imagenet"
    path = Path(encoder_weights)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights not found: {path}")
    return str(path)


def build_encoder(cfg: ModelConfig, taps: tuple[str, ...]):
    """MobileNetV2 trimmed to `taps` (a multi-output model named 'encoder')."""
    import keras

    base = keras.applications.MobileNetV2(input_shape=(cfg.input_size, cfg.input_size, 3), include_top=False,
                                          alpha=cfg.alpha, weights=_weights_arg(cfg.encoder_weights))
    names = {layer.name for layer in base.layers}
    unknown = [n for n in taps if n not in names]
    if unknown:  # Keras' own message lists all ~150 layer names
        raise ValueError(f"MobileNetV2 has no layer {unknown[0]!r} (e.g. {FAST_CLASS}, block_15_add, out_relu)")
    return keras.Model(base.input, [base.get_layer(n).output for n in taps], name="encoder")


def _sep_block(x, filters: int, name: str):
    """Depthwise-separable 3×3 conv + BN + ReLU (the fast decoder's only spatial op)."""
    from keras import layers

    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sepconv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


@functools.cache
def _masked_average_layer():
    """A Keras layer: mean of features (N,h,w,C) weighted by a map (N,h,w,1) — the class features of the product's
    cells, not of the studio background (which would dilute a small cup's features 10:1 under a global average)."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="roomfit")
    class MaskedAverage(keras.layers.Layer):
        def call(self, features, weights):
            total = ops.sum(weights, axis=(1, 2))
            # A photo with no foreground falls back to the global mean rather than dividing by ~0.
            return (ops.sum(features * weights, axis=(1, 2)) + 1e-3 * ops.mean(features, axis=(1, 2))) / (total + 1e-3)

    return MaskedAverage


def _fast_decoder(skips: list, deep, semantic, cfg: ModelConfig):
    """Factorised head: a light U-Net decides foreground vs background per pixel, a global classifier decides which
    product it is; the logits are [bg, fg + class_k − max_j class_j], so argmax gives background where bg > fg and
    otherwise the image's best class.

    Mask side: LR-ASPP-style 1×1 conv at stride 16 gated by global context, then bilinear ×2 steps that concatenate
    the encoder's narrow bottleneck skips (strides 8, 4, 2) with one separable conv each, two 1×1 maps (bg, fg) at
    stride 2 and a bilinear ×2. Class side: average of the stride-32 features (over the whole photo, or with
    class_pool="masked" over the predicted foreground; with "multilevel" the stride-16 average the gate already
    computes joins it), dropout, dense. A product photo shows one product, so one
    class per image makes the class map consistent (no speckled class mixtures).
    """
    from keras import layers

    n_fg = cfg.classes - 1
    w = cfg.width
    x = layers.Conv2D(w, 1, use_bias=False, name="head_conv")(deep)
    x = layers.BatchNormalization(name="head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="head_pool")(deep)
    g = layers.Conv2D(w, 1, activation="sigmoid", name="head_gate")(pooled)
    x = layers.Multiply(name="head_gated")([x, g])
    for i, skip in enumerate(reversed(skips)):  # strides 8, 4, 2
        w = max(24, w // 2)
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"up{i + 1}_resize")(x)
        x = layers.Concatenate(name=f"up{i + 1}_concat")([x, skip])
        x = _sep_block(x, w, name=f"up{i + 1}")
    bg = layers.Conv2D(1, 1, name="bg_logit")(x)
    fg = layers.Conv2D(1, 1, name="fg_logit")(x)
    if cfg.class_pool == "masked":
        cell = x.shape[1] // semantic.shape[1]  # stride-2 mask pixels per stride-32 feature cell
        fg_prob = layers.Activation("sigmoid", name="class_fg_prob")(layers.Subtract(name="class_fg_margin")([fg, bg]))
        cells = layers.AveragePooling2D(cell, name="class_fg_cells")(fg_prob)
        c = _masked_average_layer()(name="class_pool")(semantic, cells)
    elif cfg.class_pool == "multilevel":
        # The stride-16 features add mid-level shape and texture cues (a stem, a rim) that the stride-32 ones have
        # pooled away; their photo average is computed for the gate anyway, so this costs only the dense weights.
        c = layers.Concatenate(name="class_pool")([layers.Flatten(name="class_pool16")(pooled),
                                                   layers.GlobalAveragePooling2D(name="class_pool32")(semantic)])
    else:
        c = layers.GlobalAveragePooling2D(name="class_pool")(semantic)
    bg = layers.UpSampling2D(2, interpolation="bilinear", name="bg_resize")(bg)
    fg = layers.UpSampling2D(2, interpolation="bilinear", name="fg_resize")(fg)
    c = layers.Dropout(0.3, name="class_dropout")(c)
    c = layers.Dense(n_fg, name="class_dense")(c)
    # Shift the class logits so the best is 0: then argmax says foreground exactly when fg > bg, however unsure the
    # class is (with log-softmax, an unsure class would turn foreground pixels into background).
    c_max = layers.GlobalMaxPooling1D(name="class_max")(layers.Reshape((n_fg, 1), name="class_column")(c))
    c = layers.Subtract(name="class_shift")([c, c_max])
    c = layers.Reshape((1, 1, n_fg), name="class_reshape")(c)
    fg_classes = layers.Add(name="fg_class_logits")([fg, c])  # broadcasts (N,H,W,1) + (N,1,1,K)
    return layers.Concatenate(name="logits")([bg, fg_classes])


def _pix2pix_decoder(skips: list, deep, semantic, cfg: ModelConfig):
    """The original U-Net decoder: Conv2DTranspose + BN + ReLU up-blocks with skip concatenations."""
    from keras import layers

    x = semantic
    skips = [*skips, deep]
    for i, (filters, skip) in enumerate(zip(PIX2PIX_FILTERS, reversed(skips))):
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False,
                                   name=f"up{i + 1}_deconv")(x)
        x = layers.BatchNormalization(name=f"up{i + 1}_bn")(x)
        x = layers.ReLU(name=f"up{i + 1}_relu")(x)
        x = layers.Concatenate(name=f"up{i + 1}_concat")([x, skip])
    return layers.Conv2DTranspose(cfg.classes, 3, strides=2, padding="same", name="logits")(x)


def build_model(input_size: int = 160, classes: int = 10, alpha: float = 1.0, decoder: str = "fast",
                encoder_weights: str | Path | None = None, width: int = 96, class_pool: str = "global"):
    """Build the segmentation model: raw RGB 0..255 in, logits (N, H, W, classes) out."""
    import keras
    from keras import layers

    cfg = ModelConfig(input_size, classes, alpha, decoder, encoder_weights, width, class_pool)
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r} (choose from {', '.join(DECODERS)})")
    if class_pool not in CLASS_POOLS:
        raise ValueError(f"unknown class pool {class_pool!r} (choose from {', '.join(CLASS_POOLS)})")
    check_input_size(input_size)
    if classes < 2:
        raise ValueError("need at least 2 classes (background and one more)")
    taps = FAST_SKIPS + (FAST_DEEP, FAST_CLASS) if decoder == "fast" else PIX2PIX_TAPS
    encoder = build_encoder(cfg, taps)
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(inputs)
    # Keras 3 lets an outer model.fit's training=True override this training=False, so it only covers plain
    # inference calls; set_encoder_trainable() is what keeps the encoder's batch norm frozen during fine-tuning.
    *skips, deep, semantic = encoder(x, training=False)
    head = _fast_decoder if decoder == "fast" else _pix2pix_decoder
    outputs = head(skips, deep, semantic, cfg)
    return keras.Model(inputs, outputs, name=f"roomfit_seg_{decoder}")


def set_encoder_trainable(model, trainable: bool, unfreeze_from: str | None = None) -> None:
    """Freeze or unfreeze the model's encoder for fine-tuning; its batch-norm layers stay frozen either way.

    A trainable BatchNormalization layer normalises with the batch's statistics while training and drifts its moving
    averages: with batches of 16 product photos that replaced the ImageNet statistics and cost validation IoU at every
    fine-tuning epoch. A frozen one (Keras 3) runs in inference mode, whatever the training flag says.
    `unfreeze_from` names the first encoder layer to train (e.g. "block_13_expand"); the ones before it stay frozen."""
    from keras import layers

    encoder = model.get_layer("encoder")
    encoder.trainable = trainable
    names = [layer.name for layer in encoder.layers]
    if unfreeze_from is not None and unfreeze_from not in names:
        raise ValueError(f"unfreeze_from: the encoder has no layer {unfreeze_from!r}")
    first = names.index(unfreeze_from) if trainable and unfreeze_from else 0
    for i, layer in enumerate(encoder.layers):
        if i < first or isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def _layer_macs(layer, transpose_at_output: bool) -> int:
    """Multiply-accumulates of one layer (0 for layers that do none: batch norm folds into the conv, resizes free)."""
    from keras import layers

    if not isinstance(layer, (layers.DepthwiseConv2D, layers.SeparableConv2D, layers.Conv2DTranspose, layers.Conv2D,
                              layers.Dense)):
        return 0
    out_shape = layer.output.shape
    in_ch = layer.input.shape[-1]
    spatial = math.prod(out_shape[1:-1])
    if isinstance(layer, layers.Dense):
        return in_ch * out_shape[-1]
    kh, kw = layer.kernel_size
    if isinstance(layer, layers.SeparableConv2D):  # 'same' padding, stride 1: depthwise then pointwise
        return spatial * in_ch * kh * kw + spatial * in_ch * out_shape[-1]
    if isinstance(layer, layers.DepthwiseConv2D):
        return spatial * in_ch * kh * kw
    if isinstance(layer, layers.Conv2DTranspose):
        in_spatial = math.prod((out_shape if transpose_at_output else layer.input.shape)[1:-1])
        return in_spatial * in_ch * kh * kw * out_shape[-1]
    return spatial * in_ch * kh * kw * out_shape[-1]


def mac_breakdown(model, transpose_at_output: bool = False) -> dict[str, int]:
    """Multiply-accumulates of one forward pass, split into the MobileNetV2 `encoder` and everything after it (the
    decoder and, for the fast model, its class head).

    A stride-2 transposed conv does in_pixels × k² × c_in × c_out MACs; `transpose_at_output` instead counts it as a
    dense conv over the (zero-inserted) output, 4× more, which is how TF's profiler-style counters report it."""
    import keras

    def walk(m, part):
        for layer in m.layers:
            if isinstance(layer, keras.Model):
                yield from walk(layer, "encoder" if layer.name == "encoder" else part)
            else:
                yield layer, part

    parts = {"encoder": 0, "decoder": 0}
    for layer, part in walk(model, "decoder"):
        parts[part] += _layer_macs(layer, transpose_at_output)
    return parts


def count_macs(model, transpose_at_output: bool = False) -> int:
    """Multiply-accumulates of one forward pass (convolutions and dense layers; batch norm folded, resizes free); see
    `mac_breakdown` for the transposed-conv conventions."""
    return sum(mac_breakdown(model, transpose_at_output).values())
