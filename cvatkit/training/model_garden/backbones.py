"""Backbones Model Garden lacks, registered through its backbone factory.

Inception-ResNet-v2 (the most complex backbone of CVAT's original workflow) comes from
``tf_keras.applications``; its feature maps at strides 8, 16 and 32 feed the FPN.
"""

from __future__ import annotations

import dataclasses

import tf_keras
from official.modeling import hyperparams
from official.vision.configs import backbones as backbone_configs
from official.vision.modeling.backbones import factory

_LEVEL_LAYERS = {3: "mixed_5b", 4: "mixed_6a", 5: "conv_7b_ac"}


@dataclasses.dataclass
class InceptionResNetV2(hyperparams.Config):
    """No options: the Keras Applications network as it is."""


@dataclasses.dataclass
class Backbone(backbone_configs.Backbone):
    inception_resnet_v2: InceptionResNetV2 = dataclasses.field(
        default_factory=InceptionResNetV2)


def inception_resnet_v2_config() -> Backbone:
    return Backbone(type="inception_resnet_v2")


class InceptionResNetV2Backbone(tf_keras.Model):
    """Keras Applications' Inception-ResNet-v2 returning levels 3 to 5.

    Its unpadded convolutions give feature maps a few pixels off the sizes an FPN needs
    (input size / 2**level); each level is resized to exactly that.
    """

    def __init__(self, input_specs: tf_keras.layers.InputSpec, **kwargs) -> None:
        height, width = input_specs.shape[1:3]
        inputs = tf_keras.Input(shape=input_specs.shape[1:])
        net = tf_keras.applications.InceptionResNetV2(
            include_top=False, weights=None, input_tensor=inputs)
        endpoints = {
            str(level): tf_keras.layers.Resizing(height // 2 ** level, width // 2 ** level,
                                                 name=f"level_{level}")(
                net.get_layer(name).output)
            for level, name in _LEVEL_LAYERS.items()}
        super().__init__(inputs=inputs, outputs=endpoints, **kwargs)
        self._net = net
        self._output_specs = {k: v.get_shape() for k, v in endpoints.items()}

    @property
    def output_specs(self):
        return self._output_specs

    def load_keras_weights(self, path: str) -> None:
        """Load Keras Applications' ImageNet weights (the 'notop' .h5 file), layer by
        layer in order: the network is built exactly as Keras Applications builds it."""
        self._net.load_weights(path)

    def get_config(self):
        return {}


@factory.register_backbone_builder("inception_resnet_v2")
def build_inception_resnet_v2(input_specs, backbone_config, norm_activation_config,
                              l2_regularizer=None):  # noqa: ARG001
    return InceptionResNetV2Backbone(input_specs)
