"""customer-api: the customer archive (客户档案)."""
