from cdss.cli.main import run

run()
