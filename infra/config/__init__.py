"""Stack configuration: one frozen dataclass, validated by a pure function.

``pulumi.Config`` is read in ``infra/__main__.py`` only; everything else gets a
:class:`Settings`. The modules: :mod:`~infra.config.settings` (what configuration
becomes), :mod:`~infra.config.keys` (every key, its default and meaning),
:mod:`~infra.config.published` (AWS-published images, layer and AMI the defaults name),
:mod:`~infra.config.reader` (typed, validating reads), :mod:`~infra.config.load`
(values -> Settings) and :mod:`~infra.config.stack_file` (``Pulumi.<stack>.yaml``).
"""

from infra.config.keys import KEY_DEFAULTS, KEY_NAMES, KEYS, PROJECT, Key
from infra.config.load import (
    ENDPOINT_MODES,
    LOG_RETENTION_DAYS,
    SERVERLESS_MEMORY_SIZES,
    TRAINING_BACKENDS,
    load_settings,
)
from infra.config.published import (
    AL2023_AMI_PARAMETER,
    POWERTOOLS_LAYER_ACCOUNT,
    POWERTOOLS_LAYER_VERSION,
    SKLEARN_IMAGE_ACCOUNTS,
    SKLEARN_IMAGE_TAG,
    default_image_uri,
    default_powertools_layer_arn,
    parse_image_uri,
)
from infra.config.reader import Getter
from infra.config.settings import Settings, StackConfigError
from infra.config.stack_file import available_stacks, load_stack_config, settings_for_stack

__all__ = [
    "AL2023_AMI_PARAMETER",
    "ENDPOINT_MODES",
    "KEYS",
    "KEY_DEFAULTS",
    "KEY_NAMES",
    "LOG_RETENTION_DAYS",
    "POWERTOOLS_LAYER_ACCOUNT",
    "POWERTOOLS_LAYER_VERSION",
    "PROJECT",
    "SERVERLESS_MEMORY_SIZES",
    "SKLEARN_IMAGE_ACCOUNTS",
    "SKLEARN_IMAGE_TAG",
    "TRAINING_BACKENDS",
    "Getter",
    "Key",
    "Settings",
    "StackConfigError",
    "available_stacks",
    "default_image_uri",
    "default_powertools_layer_arn",
    "load_settings",
    "load_stack_config",
    "parse_image_uri",
    "settings_for_stack",
]
