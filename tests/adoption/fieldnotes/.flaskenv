FLASK_APP=autoapp.py
