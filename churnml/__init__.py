"""churnml: churn risk from customer-service interaction logs."""

from churnml.contract import CONTRACT_VERSION

__version__ = "0.1.0"

__all__ = ["CONTRACT_VERSION", "__version__"]
