"""A name lexicon: common given names and surnames (US census and worldwide frequency lists).

No package on the registry that this project installs ships a name list (spaCy's small
English model has no lexeme frequencies either), so a compact lexicon lives here. It is a
prior, not the whole answer: names outside it are caught by spaCy's NER, by context rules
(honorifics, "spoke with ...") and by the table's own name columns (the deny list).
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


GIVEN = _words(
    """
    Aaron Abigail Adaeze Adam Ahmed Aiden Aisha Alan Albert Alejandro Alexander Alexei
    Alexis Ali Alice Amanda Amara Amber Amelie Amit Amy Ana Ananya Anastasia Andre Andrea
    Andrew Angela Anil Ann Anna Anthony Antonio Aoife Aria Arjun Arthur Ashley Astrid Audrey
    Aurora Austin Ava Barbara Beatriz Benjamin Betty Beverly Billy Bobby Brandon Brenda
    Brian Brittany Brooklyn Bruce Bryan Caleb Camila Carl Carlos Carmen Carol Caroline
    Carolyn Catherine Charles Charlotte Cheryl Chiamaka Chiara Chinedu Chloe Christian
    Christina Christine Christopher Claire Colin Connor Craig Crystal Cynthia Daniel Daniela
    Danielle Darius David Dawn DeShawn Deborah Debra Declan Deepak Denise Dennis Derek Diana
    Diane Diego Divya Dmitri Donald Donna Doris Dorothy Douglas Dylan Ebony Eduardo Edward
    Elena Elijah Elizabeth Ella Emeka Emily Emma Eric Erica Erik Erin Ethan Eugene Evan
    Evelyn Everly Fatima Felix Fernanda Fernando Finn Fiona Folake Frances Francesca
    Francois Frank Fred Freya Gabriel Gabriela Gary George Gerald Gina Giovanni Giulia
    Gloria Gordon Grace Graham Gregory Greta Guadalupe Hana Hannah Hans Harold Harper Harry
    Hassan Hazel Heather Helen Henry Hiroshi Howard Hugo Hunter Hyun Ian Ibrahim Imani Ines
    Ingrid Irina Isaac Isabel Isabella Ivan Jack Jacob Jacqueline Jamal James Janet Janice
    Jasmine Jason Javier Jean Jeffrey Jennifer Jeremy Jerry Jesse Jessica Ji Jian Joan Joe
    John Jonathan Jordan Jorge Jose Joseph Joshua Joyce Juan Judith Judy Julie Jun Jurgen
    Justin Karen Katherine Kathleen Kathryn Kavya Kayla Keisha Keith Kelly Kenji Kenneth
    Kevin Kimberly Kirsten Klaus Kofi Kristen Kwame Kyle Lakshmi Larry Lars Latoya Laura
    Lauren Lawrence Layla Leila Leo Liam Lily Linda Ling Linh Lisa Logan Lori Louis Luca
    Lucas Lucia Lucy Luis Luke Madison Magnus Malcolm Malik Manuel Marco Marcus Margaret
    Maria Mariam Mariana Marie Marilyn Mario Mark Martha Martin Mary Mason Matteo Matthew
    Max Megan Mei Melanie Melissa Mia Michael Michelle Miguel Mikhail Min Minh Mohammed
    Moira Monica Muhammad Nancy Naomi Natalie Natasha Nathan Neha Neil Ngozi Niamh Nicholas
    Nicole Nikolai Noah Noor Nora Olga Oliver Olivia Omar Oscar Owen Paisley Pamela Patricia
    Patrick Paul Pedro Peter Philip Pierre Pooja Priya Rachel Rafael Rahul Raj Ralph Randy
    Ravi Raymond Rebecca Ricardo Richard Riley Robert Roger Ronald Rosa Roy Russell Ruth
    Ryan Sakura Samantha Samuel Sandra Sanjay Sara Sarah Savannah Scott Sean Sebastian
    Sergei Sergio Shane Shanice Shannon Sharon Shirley Sigrid Simon Siobhan Sofia Sophia
    Sophie Stephanie Stephen Steven Stuart Sunita Suresh Susan Sven Svetlana Takeshi Tamara
    Tariq Tatiana Teresa Terrell Terry Theodore Theresa Thi Thomas Tiffany Timothy Tina
    Tracy Trevor Troy Tuan Tunde Tyler Tyrone Valentina Vanessa Veronica Victor Victoria
    Vikram Vincent Virginia Walter Wayne Wei Wendy William Willie Ximena Yasmin Yuki Yuna
    Yusuf Zachary Zainab Zoe
    """
)
SURNAMES = _words(
    """
    Adams Adeyemi Aguilar Ahmed Alexander Ali Allen Almeida Alvarado Alvarez Andersen
    Anderson Andrews Armstrong Arnold Bailey Baker Bakker Barnes Bauer Becker Bell Bennett
    Bernard Berry Bianchi Black Boateng Boyd Bradley Brooks Brown Bruno Bryant Bui Burke
    Burns Butler Byrne Cameron Campbell Carpenter Carroll Carter Carvalho Castillo Castro
    Chavez Chen Cho Choi Chowdhury Clark Cole Coleman Collins Colombo Contreras Cook Cooper
    Costa Cox Crawford Cruz Cunningham Dang Daniels Das Davis Delgado Diaz Dixon Do Doherty
    Doyle Dubois Duncan Dunn Durand Edwards Elliott Ellis Eriksson Esposito Evans Ferguson
    Fernandez Ferrari Ferreira Fischer Fisher Fitzgerald Flores Ford Foster Fox Fraser
    Freeman Gallagher Gao Garcia Gardner Garza Gibson Girard Gomez Goncalves Gonzales
    Gonzalez Gordon Graham Grant Gray Green Griffin Guo Gupta Gutierrez Guzman Hall Hamilton
    Hansen Harris Harrison Hart Hassan Hawkins Hayes He Henderson Henry Hernandez Herrera
    Hicks Hill Hoang Hoffman Holmes Horvat Howard Hu Huang Hudson Hughes Hunt Hunter Hussain
    Ito Ivanov Iyer Jackson James Jang Jansen Jenkins Jimenez Johansson Johnson Johnston
    Jones Jordan Jung Kang Karlsson Kato Kelley Kelly Kennedy Khan Kim King Klein Knight
    Kobayashi Koch Kovacs Kowalski Kumar Kuznetsov Lane Larsen Laurent Lawrence Le Lee
    Lefebvre Leroy Lewis Li Lim Lin Liu Long Lopez Luo Lynch Ma MacDonald Malik Marino
    Marshall Martin Martinez Mason Matthews McCarthy McDonald Medina Mehta Mendez Mendoza
    Mensah Meyer Miller Mills Mitchell Moore Morales Moreau Moreno Morgan Morris Muller
    Munoz Murphy Murray Mwangi Myers Nagy Nair Nakamura Nelson Neumann Ngo Nguyen Nichols
    Nielsen Nilsson Novak Nowak O'Brien O'Connor O'Neill OBrien Okafor Okonkwo Oliveira
    Olsen Olson Ortiz Otieno Owens Palmer Park Parker Patel Patterson Payne Pena Pereira
    Perez Perkins Perry Peters Peterson Petit Petrov Pham Phillips Pierce Popov Porter
    Powell Price Quinn Rahman Ramirez Ramos Rao Ray Reddy Reed Reyes Reynolds Ricci Rice
    Richards Richardson Richter Riley Rivera Roberts Robertson Robinson Rodrigues Rodriguez
    Rogers Romano Romero Rose Ross Rossi Ruiz Russell Russo Ryan Salazar Sanchez Sanders
    Sandoval Santos Sato Schmidt Schneider Schroeder Schulz Scott Shah Sharma Shaw Silva
    Simmons Simpson Sinclair Singh Smirnov Smith Snyder Soto Sousa Spencer Stephens Stevens
    Stewart Stone Sullivan Sun Suzuki Szabo Takahashi Tanaka Taylor Thomas Thompson Torres
    Tran Tucker Turner Vargas Vasquez Vazquez Visser Volkov Vu Wagner Walker Wallace Walsh
    Wang Ward Warren Washington Watanabe Watson Weaver Webb Weber Wells West White Williams
    Willis Wilson Wisniewski Wolf Wood Woods Wright Wu Xu Yamamoto Yang Yoon Young Zhang
    Zhao Zhou Zhu
    """
)
# Names that are also everyday English words (or too short): a lone one at the start of a
# sentence is not taken as a name; next to another name word or after an honorific it is.
AMBIGUOUS = _words(
    """
    Ali Amber Ann April Art August Bailey Baker Bell Berry Bill Black Brooks Brown Bruno
    Burns Bush Carol Carter Chase Cho Christian Church Claire Cole Cook Cross Crystal Das
    Dawn Day Dean Dixon Do Drew Earl Faith Fisher Ford Fox Frank Gardner Gloria Grace Grant
    Gray Green Guy Hall Harper Hart Hazel He Hill Holmes Hope Hu Hunt Hunter Ito Ivy Jack
    Jean Ji Jordan Joy Joyce Jun June Jung Kang King Klein Knight Lane Lawrence Le Li Lily
    Lim Lincoln Little Long Lynch Ma Marie Mark Marsh Marshall Mason Max May Meyer Mills Min
    Moss Olive Page Palmer Park Pat Payne Perry Pierce Porter Price Quinn Ray Reed Rice Rich
    Riley Rogers Rose Ross Roy Savannah Sharp Shaw Spencer Stone Street Sue Summer Sun Thi
    Turner Victor Vu Wallace Ward Warren Washington Weaver Wells West White Will Wolf Wood
    Wu Xu Yang Young
    """
)
HONORIFICS = _words(
    """
    Dame Doctor Dr Fr Jr Lady Lord Madam Miss Mister Mr Mrs Ms Mx Prof Professor Rev Sir Sr
    """
)
# Words after which a capitalised word is most likely a person.
CONTEXT = _words(
    """
    adviser advisor agent applicant approved asked attention attn borrower brother by call
    called calling cc client co-signer colleague contact contacted cosigner customer
    daughter dear emailed employee employer father for friend from guarantor hello hi
    husband landlord manager met mother name named nurse officer partner patient per phoned
    referee reference regards rep representative reviewed said signed sister son speaking
    spoke spouse tenant texted thank thanks to told via wife with witness
    """
)
