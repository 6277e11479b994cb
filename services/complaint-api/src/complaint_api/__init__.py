"""complaint-api: the complaint (客户抱怨) ticket service."""
