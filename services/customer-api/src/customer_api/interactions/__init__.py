"""Contact history (客户接触记录): visits, calls, emails, complaints, surveys, notes, callbacks."""
