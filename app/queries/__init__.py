"""The read side: functions over read models returning view Structs. Never the write model."""
