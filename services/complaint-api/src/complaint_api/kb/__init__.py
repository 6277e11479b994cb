"""The knowledge base: the policy and service manual agents answer from, searchable in Chinese and English."""
