"""Example Outcrop plugin: ``myprov/{modelId}`` served by Bedrock Converse / ConverseStream."""
